"""The node's side of sync: a signed HTTP client for the hub and the agent that drives it."""

"""Domain services of the node: each validates a command, then records its event."""

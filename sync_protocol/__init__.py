"""The shared language of node and hub: identifiers, the hybrid logical clock, events and
their payload schemas, the batch envelope and wire format, request signing, the trust chain,
rights, the prescription QR code. Imports nothing of the other packages."""

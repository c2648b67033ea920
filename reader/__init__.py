"""The terminal side of hcepay: flow, checks, transports, transaction log and the CLI."""

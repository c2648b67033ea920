"""The credit authority's cryptography, shared by the card and the terminal (PROTOCOL.md §5)."""

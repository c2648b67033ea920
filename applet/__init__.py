"""The card side of hcepay: an HCE-style credit payment applet as a sans-IO state machine."""

"""Fuzz targets for hcepay: codecs, the applet and the terminal flow."""

"""Fuzz targets for hcepay (issue 8): codecs, the applet and the terminal flow."""

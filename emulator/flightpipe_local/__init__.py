"""The local stack: the emulated AWS account and the embedded warehouse.

Development tooling, shipped as its own distribution (``flightpipe-local``) that
depends on the product; nothing deployed (Lambda zip, Glue wheel) contains it.
"""

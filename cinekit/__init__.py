"""cinekit: consistent characters across panels and shots."""
__version__ = "0.1.0"

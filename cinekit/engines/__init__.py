"""Engines turn a resolved Job into frames. Import them through ``registry`` (lazily)."""

"""Tiny offline diffusers components: for cinekit's tests and for `cinekit models tiny`."""

from cinekit.testing.tiny import TinyModels, modelset_dict, write_tiny_models

__all__ = ["TinyModels", "modelset_dict", "write_tiny_models"]

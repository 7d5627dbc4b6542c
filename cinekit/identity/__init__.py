"""The identity core: one object per character, shared by every engine."""

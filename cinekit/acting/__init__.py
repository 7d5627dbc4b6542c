"""Acting: what a character's face does over a shot (expressions, blinks, mouth) and where it comes from."""

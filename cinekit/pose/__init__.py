"""Pose tracks: COCO-18 skeleton math on numpy arrays (pixels, y down). No I/O except library data."""

"""Neural modules of the two stages, one idea per module."""

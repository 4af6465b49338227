"""Stage 2, instruction-following synthesis: instruction + speech -> per-frame FLAME motion."""

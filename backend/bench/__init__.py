"""`python -m backend bench`: speed and memory of the pipeline, at the shipped scale and at paper scale."""

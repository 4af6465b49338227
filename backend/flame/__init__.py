"""FLAME model files and layers.

``pickle_io`` (load/save, numpy only), ``lbs_numpy`` (forward maths, numpy only),
``layer`` (torch) and ``synthetic`` (tiny models for tests). Import the
submodule you need; this package imports nothing on its own so that Blender's
Python never pulls in torch.
"""

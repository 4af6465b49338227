"""AVI-Talk backend: speech -> instruction text -> FLAME motion.

Importing this package must stay cheap and torch-free: Blender's own Python
imports the numpy-only parts (``backend.flame.pickle_io``, ``backend.flame.lbs_numpy``,
``backend.motion``).
"""

__version__ = "0.1.0"

"""Our motion on other characters: ARKit-named rigs and ICT-FaceKit's head (numpy only).

``arkit`` (our channels in ARKit's vocabulary), ``names`` (matching a rig's
shape-key and bone names), ``solve`` (per-frame least squares for rigs whose
shapes are correlated), ``ict`` (ICT-FaceKit's FaceXModel folder as arrays),
``compare`` (the geometric check of the ARKit table against ICT's shapes),
``transfer`` (our motion onto ICT by the solve). No torch and no bpy, so
Blender's Python can import every module; this package imports nothing on its own.
"""

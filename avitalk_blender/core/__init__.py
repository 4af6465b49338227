"""bpy-free logic of the AVI-Talk extension: plain pytest can test every module here."""

"""Where Blender versions differ: the one module that knows (3.4 to 5.0).

The add-on is written for Blender 5's API. Each name here picks the API the
running Blender has, by feature (an RNA property or method present), not by
version number:

- slotted actions (4.4+: action -> slot -> layer -> strip -> channelbag -> F-curves)
  or the action's own F-curves;
- the sequencer's strips (``strips_all`` in 5.0, ``sequences_all`` before);
- ``layout.progress`` (4.0+), drawn as a percentage label before;
- ``Mesh.shade_smooth`` (4.1+), the polygons' smooth flag before;
- polygon sizes, derived from ``loop_start`` (4.0+) or set as ``loop_total`` before;
- a shape key's vertex positions (``points``, 4.1+, or ``data``);
- the extension user folder (4.2+), Blender's user data folder before;
- the "allow online access" setting (4.2+; always allowed before).
"""

import bpy
import numpy as np

SLOTTED = "slots" in bpy.types.Action.bl_rna.properties


def fcurve_new(fcurves, data_path: str, index: int, group: str):
    """A new F-curve in ``group`` (a channelbag's ``group_name``, an action's ``action_group``)."""
    group_kw = {"group_name": group} if SLOTTED else {"action_group": group}
    return fcurves.new(data_path, index=index, **group_kw)


def all_strips(editor) -> list:
    """Every strip of a sequence editor, meta strips' contents included."""
    return list(editor.strips_all if hasattr(editor, "strips_all") else editor.sequences_all)


def top_strips(editor):
    """The editor's top-level strip collection (``new_sound`` and friends live here)."""
    return editor.strips if hasattr(editor, "strips") else editor.sequences


def progress(layout, factor: float, text: str) -> None:
    """A progress bar, or a label with the percentage where ``layout.progress`` is missing."""
    if hasattr(layout, "progress"):
        layout.progress(factor=factor, type='BAR', text=text)
    else:
        layout.label(text=f"{text} ({round(100 * factor)}%)", icon='TIME')


def shade_smooth(mesh) -> None:
    if hasattr(mesh, "shade_smooth"):
        mesh.shade_smooth()
    else:
        mesh.polygons.foreach_set("use_smooth", np.ones(len(mesh.polygons), dtype=bool))


def shape_key_points(key):
    """The shape key's per-vertex points (``foreach_set("co", ...)`` works on both)."""
    return key.points if hasattr(key, "points") else key.data


def set_triangles(mesh, n_faces: int) -> None:
    """Make the mesh's ``n_faces`` added polygons consecutive triangles over its loops."""
    mesh.polygons.foreach_set("loop_start", np.arange(0, 3 * n_faces, 3, dtype=np.int32))
    if not bpy.types.MeshPolygon.bl_rna.properties["loop_total"].is_readonly:
        mesh.polygons.foreach_set("loop_total", np.full(n_faces, 3, dtype=np.int32))


def extension_user_dir(package: str):
    """This extension's user folder, or None when it runs as a legacy add-on or from a checkout."""
    if not hasattr(bpy.utils, "extension_path_user"):
        return None
    try:
        return bpy.utils.extension_path_user(package, path="", create=True)
    except ValueError:  # not installed as an extension
        return None


def online_access() -> bool:
    return getattr(bpy.app, "online_access", True)

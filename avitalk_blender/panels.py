"""The "AVI-Talk" tab in the 3D viewport sidebar (audio, Generate, instruction, takes, bake, a character's
channel map) and the status bar."""

import bpy

from . import character, compat, flame_map, takes
from .core.character import BONE_ROLES
from .core.errors import AviTalkError
from .session import SESSION


class AVITALK_UL_takes(bpy.types.UIList):
    """Takes: name, seed and instruction (read from the take's actions)."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index=0):
        shapes, _ = takes.take_actions(item.name)
        if shapes is None:
            layout.label(text=f"{item.name} (actions deleted)", icon='ERROR')
            return
        row = layout.row(align=True)
        row.label(text=item.name, icon='ACTION')
        row.label(text=f"seed {shapes.get('avitalk_seed', '-')}")


class AVITALK_UL_segments(bpy.types.UIList):
    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index=0):
        row = layout.row(align=True)
        row.label(text=f"{item.frame}")
        row.prop(item, "instruction", text="", emboss=True)


class AVITALK_UL_channels(bpy.types.UIList):
    """A character's channel map: each ARKit name and the shape key that plays it."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index=0):
        row = layout.row(align=True)
        row.label(text=item.arkit, icon='CHECKMARK' if item.key else 'BLANK1')
        key = data.id_data.data.shape_keys
        if key is not None:
            row.prop_search(item, "key", key, "key_blocks", text="")


class _Sidebar:
    """Where every AVI-Talk panel lives: the "AVI-Talk" tab of the 3D viewport sidebar."""
    bl_space_type = 'VIEW_3D'
    bl_region_type = 'UI'
    bl_category = "AVI-Talk"


class _SubPanel(_Sidebar):
    bl_parent_id = "AVITALK_PT_main"


class AVITALK_PT_main(_Sidebar, bpy.types.Panel):
    bl_label = "AVI-Talk"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.avitalk
        layout.operator("avitalk.import_head", icon='MONKEY')
        if not character.candidate(context.active_object):
            layout.label(text="Select an AVI-Talk head or an ARKit-named character", icon='INFO')

        box = layout.box()
        box.label(text="Audio", icon='SOUND')
        box.row().prop(settings, "audio_source", expand=True)
        if settings.audio_source == 'FILE':
            box.prop(settings, "audio_file", text="")
            box.prop(settings, "frame_start")
        else:
            box.prop(settings, "use_range")
            if settings.use_range:
                row = box.row(align=True)
                row.prop(settings, "range_start")
                row.prop(settings, "range_end")
        row = box.row(align=True)
        row.prop(settings, "dialogue")
        if settings.dialogue.strip():
            row.prop(settings, "dialogue_language", text="")

        box = layout.box()
        if SESSION.working:
            fraction, label = SESSION.progress()
            compat.progress(box, fraction, label)
            box.operator("avitalk.cancel", icon='CANCEL')
        else:
            box.operator("avitalk.generate", icon='PLAY_SOUND')
        if SESSION.message:
            failed = "failed" in SESSION.message.lower()
            box.label(text=SESSION.message, icon='ERROR' if failed else 'INFO')
            if failed:
                box.operator("avitalk.open_log", icon='TEXT')
        for warning in SESSION.warnings:
            box.label(text=warning, icon='ERROR')


class AVITALK_PT_instruction(_SubPanel, bpy.types.Panel):
    bl_label = "Instruction"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.avitalk
        layout.prop(settings, "instruction", text="")
        row = layout.row(align=True)
        row.operator("avitalk.regenerate", icon='FILE_REFRESH')
        row.operator("avitalk.regenerate", text="New Variation", icon='SHADERFX').new_variation = True
        layout.prop(settings, "seed")
        col = layout.column(align=True)
        col.prop(settings, "intensity", slider=True)
        col.prop(settings, "upper_face", slider=True)
        col.prop(settings, "lower_face", slider=True)
        col.prop(settings, "smoothing")
        row = layout.row()
        row.prop(settings, "head_motion")
        row.prop(settings, "blinks")


class AVITALK_PT_segments(_SubPanel, bpy.types.Panel):
    bl_label = "Segments"
    bl_options = {'DEFAULT_CLOSED'}

    def draw_header(self, context):
        self.layout.prop(context.scene.avitalk, "use_segments", text="")

    def draw(self, context):
        layout = self.layout
        settings = context.scene.avitalk
        layout.active = settings.use_segments
        layout.operator("avitalk.sync_segments", icon='MARKER_HLT')
        layout.template_list("AVITALK_UL_segments", "", settings, "segments", settings, "segment_index", rows=3)
        layout.prop(settings, "blend_seconds")


class AVITALK_PT_takes(_SubPanel, bpy.types.Panel):
    bl_label = "Takes"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.avitalk
        row = layout.row()
        row.template_list("AVITALK_UL_takes", "", settings, "takes", settings, "take_index", rows=3)
        row.column().operator("avitalk.delete_take", text="", icon='X')
        if takes.chosen(settings):
            shapes, _ = takes.take_actions(settings.takes[settings.take_index].name)
            if shapes is not None:
                layout.label(text=str(shapes.get("avitalk_instruction", "")))
        layout.prop(settings, "push_to_nla")
        row = layout.row(align=True)
        row.prop(settings, "decimate")
        sub = row.row(align=True)
        sub.active = settings.decimate
        sub.prop(settings, "tolerance")
        layout.operator("avitalk.bake", icon='KEYINGSET')


def _draw_flame_map(layout, context, arm_obj) -> None:
    """A FLAME rig in the Character panel: the state of its expression map and the fit error per channel, in mm."""
    state, text, fraction = flame_map.status(arm_obj)
    if state == "fitting":
        compat.progress(layout, fraction, text)
        return
    layout.label(text=text, icon={"fitted": 'CHECKMARK', "failed": 'ERROR'}.get(state, 'INFO'))
    if state == "ours":
        return
    layout.prop(context.scene.avitalk, "per_frame_solve")
    try:
        fmap = flame_map.stored_map(arm_obj)
    except AviTalkError as exc:
        layout.label(text=str(exc), icon='ERROR')
        return
    if fmap is None:
        return
    layout.label(text=fmap.summary())
    box = layout.box()
    box.label(text="Fit error per channel, mm over the face (RMS / max)")
    grid = box.grid_flow(columns=2, even_columns=True, align=True)
    for name, (rms, worst) in fmap.fit_error_mm.items():
        grid.label(text=f"{name}: {rms:.2f} / {worst:.1f}")


class AVITALK_PT_character(_SubPanel, bpy.types.Panel):
    """What the selected character gets: an ARKit-named one's keys and bones and the map to edit it; a FLAME
    file's rig, the state of its expression map and its fit error per channel."""
    bl_label = "Character"
    bl_options = {'DEFAULT_CLOSED'}

    @classmethod
    def poll(cls, context):
        obj = context.active_object
        return character.candidate(obj)

    def draw(self, context):
        layout = self.layout
        try:
            found = character.find(context.active_object)
            if found.flame:
                _draw_flame_map(layout, context, found.armature)
                return
            channel_map = found.channel_map()
        except AviTalkError as exc:
            layout.label(text=str(exc), icon='ERROR')
            return
        driven = channel_map.driven_keys()
        layout.label(text=f"{len(driven)} ARKit channels driven, {len(channel_map.unmatched_arkit)} not on the rig",
                     icon='CHECKMARK' if driven or channel_map.bones else 'ERROR')
        bones = ", ".join(f"{role}: {name}" for role, name in channel_map.bones.items())
        layout.label(text=f"Bones: {bones}" if bones else "No jaw, eye, head or neck bone", icon='BONE_DATA')
        if channel_map.unmatched_keys:
            shown = ", ".join(channel_map.unmatched_keys[:6])
            more = len(channel_map.unmatched_keys) - 6
            layout.label(text="Unmatched keys: " + shown + (f" and {more} more" if more > 0 else ""))
        if "avitalk_solve_map" in found.mesh:
            layout.prop(context.scene.avitalk, "per_frame_solve")
        stored = found.mesh.avitalk_map
        if not stored.stored:
            layout.operator("avitalk.store_map", icon='GREASEPENCIL')
            return
        layout.template_list("AVITALK_UL_channels", "", stored, "entries", stored, "entry_index", rows=6)
        col = layout.column(align=True)
        for role in BONE_ROLES:
            if found.armature is not None:
                col.prop_search(stored, role, found.armature.data, "bones")
            else:
                col.prop(stored, role)
        layout.operator("avitalk.clear_map", icon='FILE_REFRESH')


class AVITALK_PT_motion_file(_SubPanel, bpy.types.Panel):
    bl_label = "Motion File"
    bl_options = {'DEFAULT_CLOSED'}

    def draw(self, context):
        layout = self.layout
        settings = context.scene.avitalk
        layout.prop(settings, "motion_path", text="")
        layout.prop(settings, "auto_start")
        row = layout.row()
        row.enabled = not settings.auto_start
        row.prop(settings, "frame_start")
        layout.prop(settings, "push_to_nla")
        op = layout.operator("avitalk.apply_motion", icon='IMPORT')
        op.filepath = settings.motion_path
        op.auto_start = settings.auto_start
        op.frame_start = settings.frame_start
        op.push_to_nla = settings.push_to_nla


def draw_status(self, context):
    """Status bar: a progress bar and Cancel while AVI-Talk generates."""
    if not SESSION.working:
        return
    fraction, label = SESSION.progress()
    row = self.layout.row(align=True)
    compat.progress(row, fraction, f"AVI-Talk: {label}")
    row.operator("avitalk.cancel", text="", icon='CANCEL')

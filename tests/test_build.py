"""build.py: the extension zip validates and installs into Blender, and the installed copy works."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import build

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def extension_zip(tmp_path_factory):
    return build.build_zip(tmp_path_factory.mktemp("dist"))


def test_zip_layout(extension_zip):
    names = zipfile.ZipFile(extension_zip).namelist()
    assert "blender_manifest.toml" in names and "__init__.py" in names
    assert "core/backend_ref.py" in names and "backend/motion.py" in names and "backend/flame/pickle_io.py" in names
    assert not any("__pycache__" in n or n.endswith(".pyc") or n.startswith("avitalk_blender/") for n in names)


def test_zip_validates(extension_zip):
    import bpy

    cli = Path(bpy.utils.system_resource('SCRIPTS')) / "addons_core/bl_pkg/cli/blender_ext.py"
    result = subprocess.run([sys.executable, str(cli), "validate", str(extension_zip)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success" in result.stdout


def test_installed_extension_imports_a_head(extension_zip, tiny_flame):
    import addon_utils
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    repo = next(r for r in bpy.context.preferences.extensions.repos if r.module == "user_default")
    module = f"bl_ext.{repo.module}.avitalk"
    try:
        assert bpy.ops.extensions.package_install_files(
            filepath=str(extension_zip), repo=repo.module, enable_on_install=True) == {'FINISHED'}
        assert module in bpy.context.preferences.addons
        assert sys.modules[module + ".core.backend_ref"].ROOT == module + ".backend"  # the bundled copy

        path, _ = tiny_flame
        assert bpy.ops.avitalk.import_head(filepath=str(path)) == {'FINISHED'}
        arm = bpy.context.view_layer.objects.active
        assert arm.type == 'ARMATURE' and arm.children[0].data.shape_keys.key_blocks["Pose035"]
        bpy.context.preferences.addons[module].preferences.flame_path = str(path)  # preferences registered
    finally:
        addon_utils.disable(module)
        shutil.rmtree(Path(repo.directory) / "avitalk", ignore_errors=True)
        bpy.ops.wm.read_factory_settings(use_empty=True)

"""FLAME -> Blender bone values, and the pose-corrective driver expressions.

The rig (docs/architecture.md): bones with identity rest rotation in armature
space, heads at the FLAME joints of the identity-shaped neutral mesh
(``joints_rest``), so a FLAME axis-angle is the bone's quaternion directly.

FLAME regresses its joints from the expression-shaped mesh, so the joints move
a little with every expression; Blender's bones do not. A per-frame bone
LOCATION makes up for it: for bone i Blender skins with
``pose_i @ inverse(rest_i)``, FLAME with ``A_i = [Rw_i | t_i - Rw_i J_i]``
(``Rw_i``, ``t_i``: FLAME's world rotation and posed position of joint i,
``J_i``: its joint regressed at this frame). Both agree when the armature-space
pose matrix is ``M_i = A_i @ rest_i``, and the bone's local (basis) matrix
follows from ``M_i = M_p @ inverse(rest_p) @ rest_i @ basis_i``.
"""

import numpy as np

BONE_NAMES = ("root", "neck", "jaw", "left_eye", "right_eye")
PARENTS = (-1, 0, 1, 1, 1)
# Joints whose (R - I) feed FLAME's 36 pose correctives, in posedirs order.
POSE_JOINTS = BONE_NAMES[1:]


def axis_angle_to_quaternion(axis_angle: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angle -> (..., 4) unit quaternion (w, x, y, z)."""
    aa = np.asarray(axis_angle, dtype=np.float64)
    angle = np.linalg.norm(aa, axis=-1, keepdims=True)  # (..., 1)
    half = 0.5 * angle
    # sin(a/2)/a with its limit 1/2 at a = 0.
    safe = np.where(angle > 1e-12, angle, 1.0)
    scale = np.where(angle > 1e-12, np.sin(half) / safe, 0.5 - angle * angle / 48.0)
    return np.concatenate([np.cos(half), aa * scale], axis=-1)  # (..., 4)


def quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    """(..., 4) quaternion (w, x, y, z), normalised first -> (..., 3, 3) rotation matrix."""
    q = np.asarray(q, dtype=np.float64)
    w, x, y, z = np.moveaxis(q / np.linalg.norm(q, axis=-1, keepdims=True), -1, 0)
    return np.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], axis=-1).reshape(q.shape[:-1] + (3, 3))


def frame_joints(joints_rest: np.ndarray, joint_exprdirs: np.ndarray, expression: np.ndarray) -> np.ndarray:
    """FLAME's regressed joints per frame: rest joints plus the expressions' joint offsets.

    joints_rest (5, 3), joint_exprdirs (5, 3, E) = J_regressor applied to exprdirs,
    expression (T, E) -> (T, 5, 3).
    """
    return joints_rest[None] + np.einsum("jce,te->tjc", joint_exprdirs, expression)


def full_pose(global_pose, neck_pose, jaw_pose, eye_pose) -> np.ndarray:
    """Motion-file pose arrays (T, 3), (T, 3), (T, 3), (T, 6) -> (T, 5, 3) in bone order."""
    eye_pose = np.asarray(eye_pose, dtype=np.float64)
    return np.stack([global_pose, neck_pose, jaw_pose, eye_pose[:, :3], eye_pose[:, 3:]], axis=1).astype(np.float64)


def world_transforms(local_rot: np.ndarray, joints: np.ndarray, parents=PARENTS):
    """FLAME's kinematic chain: local rotations (T, 5, 3, 3) about joints (T, 5, 3)
    -> world rotations (T, 5, 3, 3) and posed joint positions (T, 5, 3)."""
    world_rot = np.empty_like(local_rot)
    world_pos = np.empty_like(joints)
    for i, p in enumerate(parents):
        if p < 0:
            world_rot[:, i] = local_rot[:, i]
            world_pos[:, i] = joints[:, i]
        else:
            world_rot[:, i] = world_rot[:, p] @ local_rot[:, i]
            world_pos[:, i] = world_pos[:, p] + np.einsum("tab,tb->ta", world_rot[:, p], joints[:, i] - joints[:, p])
    return world_rot, world_pos


def bone_values(pose: np.ndarray, expression: np.ndarray, joints_rest: np.ndarray, joint_exprdirs: np.ndarray):
    """Bone channels for a motion: pose (T, 5, 3) axis-angle, expression (T, E)
    -> quaternions (T, 5, 4) and locations (T, 5, 3)."""
    quats = axis_angle_to_quaternion(pose)  # (T, 5, 4)
    joints = frame_joints(joints_rest, joint_exprdirs, expression)  # (T, 5, 3)
    world_rot, world_pos = world_transforms(quaternion_to_matrix(quats), joints)
    return quats, bone_locations(world_rot, world_pos, joints, joints_rest)


def bone_locations(world_rot: np.ndarray, world_pos: np.ndarray, joints: np.ndarray,
                   joints_rest: np.ndarray, parents=PARENTS) -> np.ndarray:
    """Per-frame bone locations that make Blender skin exactly like FLAME.

    world_rot (T, 5, 3, 3) and world_pos (T, 5, 3): FLAME's per-joint world
    rotation and posed joint position; joints (T, 5, 3): FLAME's regressed
    joints at each frame; joints_rest (5, 3): the bone heads. Returns (T, 5, 3).
    The bones' local rotations are FLAME's local rotations (identity rest).
    """
    # Armature-space pose matrix M_i = A_i @ rest_i: rotation Rw_i, translation m_i.
    m = world_pos - np.einsum("tjab,tjb->tja", world_rot, joints - joints_rest[None])  # (T, 5, 3)
    loc = np.empty_like(m)
    for i, p in enumerate(parents):
        if p < 0:
            loc[:, i] = m[:, i] - joints_rest[i]
        else:
            # basis_i = T(J0_p - J0_i) @ inverse(M_p) @ M_i, translation part.
            delta = np.einsum("tba,tb->ta", world_rot[:, p], m[:, i] - m[:, p])  # Rw_p^T (m_i - m_p)
            loc[:, i] = delta - (joints_rest[i] - joints_rest[p])
    return loc


def _corrective_entry(r: int, c: int) -> str:
    """Entry (r, c) of R(q) - I for a unit quaternion (w, x, y, z), as a simple expression."""
    table = (
        ("-2*(y*y+z*z)", "2*(x*y-w*z)", "2*(x*z+w*y)"),
        ("2*(x*y+w*z)", "-2*(x*x+z*z)", "2*(y*z-w*x)"),
        ("2*(x*z-w*y)", "2*(y*z+w*x)", "-2*(x*x+y*y)"),
    )
    return table[r][c]


def pose_corrective_drivers() -> list:
    """For ``Pose000..Pose035``: (bone name, driver expression) in FLAME's posedirs order.

    Key k is entry (r, c) = divmod(k % 9, 3) of (R - I) of joint ``POSE_JOINTS[k // 9]``,
    written with the variables w, x, y, z (the bone's local quaternion), so Blender
    evaluates it as a simple expression, without Python.
    """
    out = []
    for k in range(36):
        r, c = divmod(k % 9, 3)
        out.append((POSE_JOINTS[k // 9], _corrective_entry(r, c)))
    return out

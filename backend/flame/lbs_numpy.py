"""FLAME forward maths in numpy (used by Blender and as the reference for the torch layer).

The same linear blend skinning as smplx's ``lbs`` (which FLAME_PyTorch uses):

    v_shaped = v_template + shapedirs . shape + exprdirs . expression
    J        = J_regressor . v_shaped                          rest joints
    v_posed  = v_shaped + posedirs . vec(R_j - I, j = 1..4)    pose correctives
    G_j      = G_parent(j) @ [R_j | J_j - J_parent(j)]         world joint transforms
    v        = sum_j w_vj (G_j @ [I | -J_j]) v_posed           skinning

Joints: 0 root (global_pose), 1 neck, 2 jaw, 3 left eye, 4 right eye. All
inputs are axis-angle vectors; every function is batched over T frames.
"""

import numpy as np

N_JOINTS = 5


def rodrigues(aa) -> np.ndarray:
    """Axis-angle vectors (..., 3) -> rotation matrices (..., 3, 3)."""
    aa = np.asarray(aa, dtype=np.float64)
    if aa.shape[-1:] != (3,):
        raise ValueError(f"axis-angle arrays end in 3, got shape {aa.shape}")
    theta2 = np.sum(aa * aa, axis=-1)[..., None, None]  # (..., 1, 1)
    theta = np.sqrt(theta2)
    small = theta2 < 1e-12
    safe = np.where(small, 1.0, theta)
    # R = I + a K + b K^2 with K the skew matrix of aa (not normalised);
    # a = sin(t)/t, b = (1 - cos t)/t^2, with their series near t = 0.
    a = np.where(small, 1.0 - theta2 / 6.0, np.sin(safe) / safe)
    b = np.where(small, 0.5 - theta2 / 24.0, (1.0 - np.cos(safe)) / (safe * safe))
    x, y, z = aa[..., 0], aa[..., 1], aa[..., 2]
    zero = np.zeros_like(x)
    K = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape(aa.shape[:-1] + (3, 3))
    return np.eye(3) + a * K + b * (K @ K)


def pose_features(rotmats) -> np.ndarray:
    """Rotation matrices (..., 5, 3, 3) -> FLAME pose features (..., 36): (R_j - I) for joints 1..4."""
    rotmats = np.asarray(rotmats, dtype=np.float64)
    if rotmats.shape[-3:] != (N_JOINTS, 3, 3):
        raise ValueError(f"expected rotation matrices (..., 5, 3, 3), got shape {rotmats.shape}")
    return (rotmats[..., 1:, :, :] - np.eye(3)).reshape(rotmats.shape[:-3] + (36,))


def _frames(name, value, width, n_frames):
    """(T, width) float64 from a (T, k) or (k,) input with k <= width (zero padded)."""
    if value is None:
        return None
    value = np.asarray(value, dtype=np.float64)
    if value.ndim == 1:
        value = value[None]
    if value.ndim != 2:
        raise ValueError(f"{name} must be (T, {width}) or ({width},), got shape {value.shape}")
    if value.shape[1] > width:
        raise ValueError(f"{name} has {value.shape[1]} components but the model has {width}")
    if value.shape[0] not in (1, n_frames):
        raise ValueError(f"{name} has {value.shape[0]} frames, other inputs have {n_frames}")
    if not np.all(np.isfinite(value)):
        raise ValueError(f"{name} contains NaN or infinite values")
    out = np.zeros((n_frames, width))
    out[:, : value.shape[1]] = value
    return out


def _inputs(model, shape, expression, global_pose, neck_pose, jaw_pose, eye_pose):
    given = [np.asarray(v) for v in (shape, expression, global_pose, neck_pose, jaw_pose, eye_pose) if v is not None]
    n_frames = max([v.shape[0] for v in given if v.ndim == 2] or [1])
    shape = _frames("shape", shape, model.shapedirs.shape[2], n_frames)
    expression = _frames("expression", expression, model.exprdirs.shape[2], n_frames)
    poses = []
    for name, value, width in (("global_pose", global_pose, 3), ("neck_pose", neck_pose, 3),
                               ("jaw_pose", jaw_pose, 3), ("eye_pose", eye_pose, 6)):
        value = np.asarray(value, dtype=np.float64) if value is not None else None
        if value is not None and value.shape[-1] != width:
            raise ValueError(f"{name} must have {width} values per frame, got shape {value.shape}")
        poses.append(_frames(name, value, width, n_frames) if value is not None else np.zeros((n_frames, width)))
    full_pose = np.concatenate(poses, axis=1).reshape(n_frames, N_JOINTS, 3)  # (T, 5, 3)
    return shape, expression, full_pose


def _blend(dirs, coeffs):
    """sum_l dirs[v, k, l] * coeffs[t, l] as one matrix product, (T, V, 3)."""
    n_verts = dirs.shape[0]
    return (coeffs @ dirs.reshape(n_verts * 3, -1).T).reshape(-1, n_verts, 3)


def _shaped(model, shape, expression, n_frames):
    v_shaped = np.broadcast_to(model.v_template, (n_frames,) + model.v_template.shape).copy()  # (T, V, 3)
    if shape is not None:
        v_shaped += _blend(model.shapedirs, shape)
    if expression is not None:
        v_shaped += _blend(model.exprdirs, expression)
    return v_shaped


def shaped_vertices(model, shape=None, expression=None) -> np.ndarray:
    """Template plus shape and expression offsets, unposed, (T, V, 3)."""
    shape, expression, full_pose = _inputs(model, shape, expression, None, None, None, None)
    return _shaped(model, shape, expression, full_pose.shape[0])


def _chain(rotmats, rest_joints, parents):
    """World transforms (T, 5, 4, 4) of the kinematic chain."""
    n_frames = rotmats.shape[0]
    rel = rest_joints.copy()  # (T, 5, 3)
    rel[:, 1:] -= rest_joints[:, parents[1:]]
    local = np.zeros((n_frames, N_JOINTS, 4, 4))
    local[..., :3, :3] = rotmats
    local[..., :3, 3] = rel
    local[..., 3, 3] = 1.0
    world = [local[:, 0]]
    for j in range(1, N_JOINTS):
        world.append(world[parents[j]] @ local[:, j])
    return np.stack(world, axis=1)


def _forward(model, shape, expression, global_pose, neck_pose, jaw_pose, eye_pose):
    shape, expression, full_pose = _inputs(model, shape, expression, global_pose, neck_pose, jaw_pose, eye_pose)
    n_frames = full_pose.shape[0]
    v_shaped = _shaped(model, shape, expression, n_frames)  # (T, V, 3)
    rest_joints = np.einsum("jv,tvk->tjk", model.J_regressor, v_shaped)  # (T, 5, 3)
    rotmats = rodrigues(full_pose)  # (T, 5, 3, 3)
    v_posed = v_shaped + _blend(model.posedirs, pose_features(rotmats))  # (T, V, 3)
    world = _chain(rotmats, rest_joints, model.parents)  # (T, 5, 4, 4)
    return v_posed, rest_joints, world


def joint_transforms(model, shape=None, expression=None, global_pose=None, neck_pose=None,
                     jaw_pose=None, eye_pose=None):
    """Per-joint world transforms and rest joints.

    Returns ``(world (T, 5, 4, 4), rest_joints (T, 5, 3))``. ``world[t, j]``
    maps joint j's frame (origin at its rest position, axes aligned with the
    model's at rest) to model space: its rotation is the accumulated chain
    rotation and its translation is the posed joint position. A bone with
    identity rest rotation at ``rest_joints[t, j]`` keyed to this matrix
    moves exactly as FLAME's skinning does; the skinning matrix of joint j is
    ``world[t, j] @ translate(-rest_joints[t, j])``.
    """
    _, rest_joints, world = _forward(model, shape, expression, global_pose, neck_pose, jaw_pose, eye_pose)
    return world, rest_joints


def flame_forward(model, shape=None, expression=None, global_pose=None, neck_pose=None,
                  jaw_pose=None, eye_pose=None):
    """FLAME vertices (T, V, 3) and posed joints (T, 5, 3).

    Each input is (T, k) or (k,) (one frame, repeated over T); missing inputs
    are zero. ``shape`` and ``expression`` may have fewer components than the
    model (the rest are zero), never more. ``eye_pose`` is the left eye then
    the right eye.
    """
    v_posed, rest_joints, world = _forward(model, shape, expression, global_pose, neck_pose, jaw_pose, eye_pose)
    rot = world[..., :3, :3]  # (T, 5, 3, 3)
    trans = world[..., :3, 3] - np.einsum("tjab,tjb->tja", rot, rest_joints)  # (T, 5, 3)
    # Skinning one joint at a time keeps memory at (T, V, 3).
    vertices = np.zeros_like(v_posed)
    for j in range(N_JOINTS):
        w = model.weights[:, j, None]  # (V, 1)
        vertices += w * (v_posed @ np.swapaxes(rot[:, j], -1, -2) + trans[:, j, None, :])
    return vertices, world[..., :3, 3]

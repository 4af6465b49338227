"""FLAME forward: torch layer == numpy maths == LBS computed by hand."""

import numpy as np
import pytest
import torch

from backend.flame.layer import FlameLayer, batch_rodrigues
from backend.flame.lbs_numpy import flame_forward, joint_transforms, pose_features, rodrigues, shaped_vertices
from backend.flame.pickle_io import FlameModel, model_from_raw
from backend.flame.synthetic import make_tiny_model


def rot_x(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rot_y(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rot_z(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def hom(R, t):
    M = np.eye(4)
    M[:3, :3], M[:3, 3] = R, t
    return M


def tiny_hand_model() -> FlameModel:
    """4 vertices, 5 joints, 1 shape and 2 expression components, written out by hand."""
    v_template = np.array([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, -1.0, 1.0], [1.0, 2.0, 1.0]])
    shapedirs = np.zeros((4, 3, 1))
    shapedirs[1, 1, 0] = 0.5       # shape 0 lifts vertex 1
    exprdirs = np.zeros((4, 3, 2))
    exprdirs[2, 2, 0] = 0.25       # expression 0 pushes vertex 2 forward
    exprdirs[3, 0, 1] = -0.125     # expression 1 moves vertex 3 left
    posedirs = np.zeros((4, 3, 36))
    posedirs[2, 1, 9 + 4] = 2.0    # jaw feature R[1,1] - 1 moves vertex 2 in y
    posedirs[3, 0, 0] = 1.0        # neck feature R[0,0] - 1 moves vertex 3 in x
    # Joints: root = v0, neck = v1, jaw = (v1 + v2)/2, eyes = v3 and mean(v0, v3).
    J_regressor = np.array([
        [1.0, 0.0, 0.0, 0.0],
        [0.0, 1.0, 0.0, 0.0],
        [0.0, 0.5, 0.5, 0.0],
        [0.0, 0.0, 0.0, 1.0],
        [0.5, 0.0, 0.0, 0.5],
    ])
    weights = np.array([
        [1.0, 0.0, 0.0, 0.0, 0.0],   # v0 root
        [0.0, 1.0, 0.0, 0.0, 0.0],   # v1 neck
        [0.0, 0.25, 0.75, 0.0, 0.0],  # v2 mostly jaw
        [0.0, 0.5, 0.0, 0.5, 0.0],   # v3 neck and left eye
    ])
    return FlameModel(
        v_template=v_template, faces=np.array([[0, 1, 2], [1, 2, 3]]), shapedirs=shapedirs, exprdirs=exprdirs,
        posedirs=posedirs, J_regressor=J_regressor, weights=weights, parents=np.array([-1, 0, 1, 1, 1]),
    )


def hand_lbs(beta, psi, root_angle, neck_angle, jaw_angle, eye_angle):
    """LBS with explicit matrices: root about z, neck about y, jaw about x, left eye about y."""
    v = np.array([[0.0, 0.0, 0.0], [0.0, 1.0 + 0.5 * beta, 0.0], [0.0, -1.0, 1.0 + 0.25 * psi[0]],
                  [1.0 - 0.125 * psi[1], 2.0, 1.0]])
    J = np.array([v[0], v[1], (v[1] + v[2]) / 2, v[3], (v[0] + v[3]) / 2])
    R_root, R_neck, R_jaw, R_leye = rot_z(root_angle), rot_y(neck_angle), rot_x(jaw_angle), rot_y(eye_angle)
    v_posed = v.copy()
    v_posed[2, 1] += 2.0 * (R_jaw[1, 1] - 1.0)
    v_posed[3, 0] += 1.0 * (R_neck[0, 0] - 1.0)
    G_root = hom(R_root, J[0])
    G_neck = G_root @ hom(R_neck, J[1] - J[0])
    G_jaw = G_neck @ hom(R_jaw, J[2] - J[1])
    G_leye = G_neck @ hom(R_leye, J[3] - J[1])
    G_reye = G_neck @ hom(np.eye(3), J[4] - J[1])

    def skin(G, j, p):  # G_j @ [I | -J_j] applied to p
        return (G @ np.append(p - J[j], 1.0))[:3]

    out = np.array([
        skin(G_root, 0, v_posed[0]),
        skin(G_neck, 1, v_posed[1]),
        0.25 * skin(G_neck, 1, v_posed[2]) + 0.75 * skin(G_jaw, 2, v_posed[2]),
        0.5 * skin(G_neck, 1, v_posed[3]) + 0.5 * skin(G_leye, 3, v_posed[3]),
    ])
    joints = np.array([G[:3, 3] for G in (G_root, G_neck, G_jaw, G_leye, G_reye)])
    return out, joints


HAND_CASES = [
    # beta, psi, root, neck, jaw, left eye
    (0.0, (0.0, 0.0), 0.0, 0.0, 0.0, 0.0),
    (0.4, (1.0, -2.0), 0.0, 0.0, 0.3, 0.0),
    (-1.0, (0.5, 3.0), 0.7, -0.4, 0.25, 0.2),
    (2.0, (-1.0, 0.0), -2.5, 1.1, -0.6, -0.9),
]


def params(case):
    beta, psi, root, neck, jaw, eye = case
    return dict(
        shape=np.array([[beta]]), expression=np.array([psi]),
        global_pose=np.array([[0.0, 0.0, root]]), neck_pose=np.array([[0.0, neck, 0.0]]),
        jaw_pose=np.array([[jaw, 0.0, 0.0]]), eye_pose=np.array([[0.0, eye, 0.0, 0.0, 0.0, 0.0]]),
    )


@pytest.mark.parametrize("case", HAND_CASES)
def test_numpy_forward_equals_hand_lbs(case):
    expected_v, expected_j = hand_lbs(*case)
    vertices, joints = flame_forward(tiny_hand_model(), **params(case))
    np.testing.assert_allclose(vertices[0], expected_v, atol=1e-12)
    np.testing.assert_allclose(joints[0], expected_j, atol=1e-12)


@pytest.mark.parametrize("case", HAND_CASES)
@pytest.mark.parametrize("dtype, atol", [(torch.float64, 1e-7), (torch.float32, 1e-5)])
def test_torch_layer_equals_hand_lbs(case, dtype, atol):
    expected_v, expected_j = hand_lbs(*case)
    layer = FlameLayer(tiny_hand_model())
    vertices, joints = layer(**{k: torch.tensor(v, dtype=dtype) for k, v in params(case).items()})
    assert vertices.dtype == dtype and joints.dtype == dtype
    np.testing.assert_allclose(vertices[0].numpy(), expected_v, atol=atol)
    np.testing.assert_allclose(joints[0].numpy(), expected_j, atol=atol)


def test_quarter_turn_of_the_jaw_by_hand():
    # A vertex fully on the jaw, one unit above the jaw joint, turns to one unit in front of it.
    model = tiny_hand_model()
    model.weights = np.tile([0.0, 0.0, 1.0, 0.0, 0.0], (4, 1))
    model.posedirs = np.zeros_like(model.posedirs)
    vertices, joints = flame_forward(model, jaw_pose=[np.pi / 2, 0.0, 0.0])
    jaw = joints[0, 2]
    np.testing.assert_allclose(jaw, [0.0, 0.0, 0.5], atol=1e-12)
    # v1 = (0, 1, 0) is (0, 1, -0.5) from the jaw joint -> (0, 0.5, 1) after +90 degrees about x.
    np.testing.assert_allclose(vertices[0, 1], jaw + [0.0, 0.5, 1.0], atol=1e-12)


def test_rodrigues_known_rotations_numpy_and_torch():
    angles = [0.0, 1e-9, 0.3, np.pi / 2, 2.0, np.pi]
    for a in angles:
        for axis, R in ((0, rot_x(a)), (1, rot_y(a)), (2, rot_z(a))):
            aa = np.zeros(3)
            aa[axis] = a
            np.testing.assert_allclose(rodrigues(aa), R, atol=1e-12)
            np.testing.assert_allclose(batch_rodrigues(torch.tensor(aa)).numpy(), R, atol=1e-12)
    aa = np.random.default_rng(0).normal(size=(2, 7, 3))
    R = rodrigues(aa)
    assert R.shape == (2, 7, 3, 3)
    np.testing.assert_allclose(R @ np.swapaxes(R, -1, -2), np.broadcast_to(np.eye(3), R.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-12)


def test_pose_features_layout():
    rotmats = np.broadcast_to(np.eye(3), (5, 3, 3)).copy()
    rotmats[2] = rot_x(0.5)  # jaw
    features = pose_features(rotmats)
    expected = np.zeros(36)
    expected[9:18] = (rot_x(0.5) - np.eye(3)).ravel()
    np.testing.assert_array_equal(features, expected)


# ---------------------------------------------------------------------------
# Torch == numpy on a random synthetic model


def random_params(rng, batch, n_shape, n_expr):
    return dict(
        shape=rng.normal(size=(batch, n_shape)), expression=rng.normal(size=(batch, n_expr)),
        global_pose=rng.normal(scale=0.5, size=(batch, 3)), neck_pose=rng.normal(scale=0.3, size=(batch, 3)),
        jaw_pose=rng.normal(scale=0.3, size=(batch, 3)), eye_pose=rng.normal(scale=0.3, size=(batch, 6)),
    )


def test_torch_matches_numpy_on_synthetic_model():
    model = model_from_raw(make_tiny_model(n_verts=40, n_shape=8, n_expr=6, seed=1), n_shape=8)
    p = random_params(np.random.default_rng(2), batch=3, n_shape=8, n_expr=6)
    v_np, j_np = flame_forward(model, **p)
    v_t, j_t = FlameLayer(model)(**{k: torch.tensor(v) for k, v in p.items()})
    np.testing.assert_allclose(v_t.numpy(), v_np, atol=1e-6)  # buffers are float32
    np.testing.assert_allclose(j_t.numpy(), j_np, atol=1e-6)
    v32, _ = FlameLayer(model)(**{k: torch.tensor(v, dtype=torch.float32) for k, v in p.items()})
    assert v32.dtype == torch.float32
    np.testing.assert_allclose(v32.numpy(), v_np, atol=1e-5)


def test_layer_pads_smaller_expression_and_refuses_larger():
    model = model_from_raw(make_tiny_model(n_verts=20, n_shape=4, n_expr=5, seed=0), n_shape=4)
    layer = FlameLayer(model)
    expr = torch.randn(2, 3, dtype=torch.float64)
    padded = torch.cat([expr, torch.zeros(2, 2, dtype=torch.float64)], dim=1)
    torch.testing.assert_close(layer(expression=expr)[0], layer(expression=padded)[0])
    with pytest.raises(ValueError, match="expression has 7 components but the FLAME model has only 5"):
        layer(expression=torch.zeros(2, 7))
    with pytest.raises(ValueError, match=r"jaw_pose must be \(2, 3\), got shape \(2, 4\)"):
        layer(expression=expr, jaw_pose=torch.zeros(2, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"batch sizes differ: shape 3, expression 2"):
        layer(expression=expr, shape=torch.zeros(3, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"shape must be a \(B, k\) tensor, got shape \(4,\)"):
        layer(expression=expr, shape=torch.zeros(4, dtype=torch.float64))


def test_layer_without_inputs_gives_the_template():
    model = model_from_raw(make_tiny_model(n_verts=20, n_shape=4, n_expr=5, seed=0), n_shape=4)
    vertices, joints = FlameLayer(model)()
    np.testing.assert_allclose(vertices[0].numpy(), model.v_template, atol=1e-6)
    np.testing.assert_allclose(joints[0].numpy(), model.J_regressor @ model.v_template, atol=1e-6)


def test_layer_gradients_are_finite_at_zero_pose():
    model = model_from_raw(make_tiny_model(n_verts=20, n_shape=4, n_expr=5, seed=0), n_shape=4)
    jaw = torch.zeros(2, 3, requires_grad=True)
    expr = torch.zeros(2, 5, requires_grad=True)
    vertices, _ = FlameLayer(model)(expression=expr, jaw_pose=jaw)
    vertices.square().sum().backward()
    assert torch.isfinite(jaw.grad).all() and torch.isfinite(expr.grad).all()
    assert expr.grad.abs().sum() > 0 and jaw.grad.abs().sum() > 0


def test_layer_buffers_stay_out_of_state_dict_and_follow_to():
    model = model_from_raw(make_tiny_model(n_verts=20, n_shape=4, n_expr=5, seed=0), n_shape=4)
    layer = FlameLayer(model)
    assert layer.state_dict() == {}
    assert layer.v_template.dtype == torch.float32 and layer.faces.dtype == torch.long
    layer = layer.to(torch.float64)
    assert layer.v_template.dtype == torch.float64


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_layer_follows_input_device():
    model = model_from_raw(make_tiny_model(n_verts=20, n_shape=4, n_expr=5, seed=0), n_shape=4)
    vertices, _ = FlameLayer(model)(expression=torch.zeros(1, 5, device="cuda"))
    assert vertices.device.type == "cuda"


# ---------------------------------------------------------------------------
# numpy API details


def test_joint_transforms_match_forward_and_rest():
    model = tiny_hand_model()
    p = params(HAND_CASES[2])
    world, rest = joint_transforms(model, **p)
    _, joints = flame_forward(model, **p)
    np.testing.assert_allclose(world[..., :3, 3], joints, atol=1e-12)
    v_shaped = shaped_vertices(model, p["shape"], p["expression"])
    np.testing.assert_allclose(rest, np.einsum("jv,tvk->tjk", model.J_regressor, v_shaped), atol=1e-12)
    # Rotation of joint j in world = product of the local rotations up the chain.
    R = rot_z(0.7) @ rot_y(-0.4) @ rot_x(0.25)
    np.testing.assert_allclose(world[0, 2, :3, :3], R, atol=1e-12)
    world0, rest0 = joint_transforms(model)
    np.testing.assert_allclose(world0[0, :, :3, :3], np.broadcast_to(np.eye(3), (5, 3, 3)), atol=0)
    np.testing.assert_allclose(world0[0, :, :3, 3], rest0[0], atol=0)


def test_numpy_inputs_broadcast_and_validate():
    model = tiny_hand_model()
    v_single, _ = flame_forward(model, jaw_pose=[0.2, 0.0, 0.0])
    v_batch, _ = flame_forward(model, jaw_pose=np.tile([0.2, 0.0, 0.0], (3, 1)), expression=np.zeros((3, 1)))
    assert v_single.shape == (1, 4, 3) and v_batch.shape == (3, 4, 3)
    np.testing.assert_allclose(v_batch, np.broadcast_to(v_single, v_batch.shape), atol=1e-15)
    with pytest.raises(ValueError, match="expression has 3 components but the model has 2"):
        flame_forward(model, expression=np.zeros((1, 3)))
    with pytest.raises(ValueError, match="has 2 frames, other inputs have 3"):
        flame_forward(model, jaw_pose=np.zeros((3, 3)), neck_pose=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="eye_pose must have 6 values"):
        flame_forward(model, eye_pose=np.zeros((1, 3)))
    with pytest.raises(ValueError, match="NaN"):
        flame_forward(model, jaw_pose=[np.nan, 0.0, 0.0])

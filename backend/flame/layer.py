"""FLAME layer in torch: parameters -> vertices and joints, differentiable.

Why our own layer and not flame-pytorch (FLAME_PyTorch): it pins numpy==1.23.4 and chumpy, which break on Python 3.11,
and it loads the model with a plain pickle.load. FLAME's forward pass is ~60 lines of linear blend skinning, so we
write it once here, read the model with our restricted unpickler, and test it against the numpy maths and a hand-computed LBS.

The maths is the same as ``backend.flame.lbs_numpy`` (see its docstring).
"""

import torch
from torch import nn

from .pickle_io import FlameModel, load_flame

N_JOINTS = 5


def batch_rodrigues(aa: torch.Tensor) -> torch.Tensor:
    """Axis-angle (..., 3) -> rotation matrices (..., 3, 3); smooth at zero."""
    theta2 = (aa * aa).sum(-1)[..., None, None]  # (..., 1, 1)
    small = theta2 < 1e-12
    theta = torch.sqrt(torch.where(small, torch.ones_like(theta2), theta2))
    a = torch.where(small, 1.0 - theta2 / 6.0, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24.0, (1.0 - torch.cos(theta)) / (theta * theta))
    x, y, z = aa.unbind(-1)
    zero = torch.zeros_like(x)
    K = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(aa.shape[:-1] + (3, 3))
    eye = torch.eye(3, dtype=aa.dtype, device=aa.device)
    return eye + a * K + b * (K @ K)


class FlameLayer(nn.Module):
    """FLAME forward pass from a ``FlameModel``; follows its inputs' device and dtype.

    The model arrays are float32 buffers that are not saved in ``state_dict``
    (the FLAME file is their source).
    """

    def __init__(self, model: FlameModel):
        super().__init__()
        self.parents = tuple(int(p) for p in model.parents)
        self.n_shape = model.n_shape
        self.n_expr = model.n_expr

        def buffer(name, array, dtype=torch.float32):
            self.register_buffer(name, torch.as_tensor(array.copy(), dtype=dtype), persistent=False)

        buffer("v_template", model.v_template)   # (V, 3)
        buffer("shapedirs", model.shapedirs)     # (V, 3, S)
        buffer("exprdirs", model.exprdirs)       # (V, 3, E)
        buffer("posedirs", model.posedirs)       # (V, 3, 36)
        buffer("J_regressor", model.J_regressor)  # (5, V)
        buffer("weights", model.weights)         # (V, 5)
        buffer("faces", model.faces, torch.long)  # (F, 3)

    @classmethod
    def from_file(cls, path, n_shape: int = 300) -> "FlameLayer":
        return cls(load_flame(path, n_shape=n_shape))

    def _coefficients(self, name, value, width, batch, like):
        """(B, width) from (B, k) with k <= width, zero padded; zeros when missing."""
        if value is None:
            return like.new_zeros(batch, width)
        if value.ndim != 2 or value.shape[0] != batch:
            raise ValueError(f"{name} must be ({batch}, k), got shape {tuple(value.shape)}")
        if value.shape[1] > width:
            raise ValueError(f"{name} has {value.shape[1]} components but the FLAME model has only {width}")
        return nn.functional.pad(value, (0, width - value.shape[1]))

    def _pose(self, name, value, width, batch, like):
        if value is None:
            return like.new_zeros(batch, width)
        if tuple(value.shape) != (batch, width):
            raise ValueError(f"{name} must be ({batch}, {width}), got shape {tuple(value.shape)}")
        return value

    def forward(self, shape=None, expression=None, global_pose=None, neck_pose=None, jaw_pose=None, eye_pose=None):
        """Vertices (B, V, 3) and posed joints (B, 5, 3) from (B, k) parameter tensors.

        ``shape`` and ``expression`` may have fewer components than the model
        (padded with zeros), never more. ``eye_pose`` is (B, 6): left eye, then right eye.
        """
        named = dict(shape=shape, expression=expression, global_pose=global_pose, neck_pose=neck_pose,
                     jaw_pose=jaw_pose, eye_pose=eye_pose)
        given = [t for t in named.values() if t is not None]
        for name, t in named.items():
            if t is not None and t.ndim != 2:
                raise ValueError(f"{name} must be a (B, k) tensor, got shape {tuple(t.shape)}")
        sizes = {name: t.shape[0] for name, t in named.items() if t is not None}
        if len(set(sizes.values())) > 1:
            raise ValueError("batch sizes differ: " + ", ".join(f"{n} {b}" for n, b in sizes.items()))
        like = given[0] if given else self.v_template
        if not like.is_floating_point():
            raise TypeError(f"FLAME parameters must be floating point tensors, got {like.dtype}")
        batch = like.shape[0] if given else 1
        to = dict(device=like.device, dtype=like.dtype)
        v_template = self.v_template.to(**to)

        shape = self._coefficients("shape", shape, self.n_shape, batch, like)            # (B, S)
        expression = self._coefficients("expression", expression, self.n_expr, batch, like)  # (B, E)
        full_pose = torch.cat([
            self._pose("global_pose", global_pose, 3, batch, like),
            self._pose("neck_pose", neck_pose, 3, batch, like),
            self._pose("jaw_pose", jaw_pose, 3, batch, like),
            self._pose("eye_pose", eye_pose, 6, batch, like),
        ], dim=1).reshape(batch, N_JOINTS, 3)  # (B, 5, 3)

        v_shaped = (v_template
                    + torch.einsum("vkl,bl->bvk", self.shapedirs.to(**to), shape)
                    + torch.einsum("vkl,bl->bvk", self.exprdirs.to(**to), expression))  # (B, V, 3)
        rest_joints = torch.einsum("jv,bvk->bjk", self.J_regressor.to(**to), v_shaped)  # (B, 5, 3)

        rotmats = batch_rodrigues(full_pose)  # (B, 5, 3, 3)
        eye3 = torch.eye(3, **to)
        pose_feature = (rotmats[:, 1:] - eye3).reshape(batch, 36)  # (B, 36)
        v_posed = v_shaped + torch.einsum("vkp,bp->bvk", self.posedirs.to(**to), pose_feature)  # (B, V, 3)

        # Kinematic chain: world transforms G_j = G_parent @ [R_j | J_j - J_parent].
        parents = list(self.parents)
        rel = torch.cat([rest_joints[:, :1], rest_joints[:, 1:] - rest_joints[:, parents[1:]]], dim=1)  # (B, 5, 3)
        local = torch.cat([rotmats, rel[..., None]], dim=-1)  # (B, 5, 3, 4)
        bottom = torch.tensor([0.0, 0.0, 0.0, 1.0], **to).expand(batch, N_JOINTS, 1, 4)
        local = torch.cat([local, bottom], dim=-2)  # (B, 5, 4, 4)
        world = [local[:, 0]]
        for j in range(1, N_JOINTS):
            world.append(world[parents[j]] @ local[:, j])
        world = torch.stack(world, dim=1)  # (B, 5, 4, 4)

        # Skinning matrices G_j @ [I | -J_j], blended per vertex.
        rot = world[..., :3, :3]  # (B, 5, 3, 3)
        trans = world[..., :3, 3] - (rot @ rest_joints[..., None])[..., 0]  # (B, 5, 3)
        # One joint at a time keeps memory at (B, V, 3) instead of (B, V, 3, 3).
        weights = self.weights.to(**to)
        vertices = torch.zeros_like(v_posed)
        for j in range(N_JOINTS):
            moved = v_posed @ rot[:, j].transpose(-1, -2) + trans[:, j, None, :]  # (B, V, 3)
            vertices = vertices + weights[:, j, None] * moved
        return vertices, world[..., :3, 3]

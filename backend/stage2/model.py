"""Stage 2: instruction-following talking face synthesis (paper section III-D).

Talking prior: speech content path + style encoder (content-irrelevant space) ->
talking generator -> motion. Instruction path: MiniLM embedding -> aligned feature
c (contrastive, eq. 7) -> diffusion prior -> style embedding (eq. 8, 9).

Training runs in two phases (``Stage2.set_phase``):
  'talking'      reconstruct motion from speech + the style of reference frames
  'instruction'  L_cont + lambda * L_diff with the talking prior frozen
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .content import ContentConfig, ContentEncoder
from ..motion import N_POSE_CHANNELS, motion_slices
from ..head.components import lower_face_indices
from .generator import GeneratorConfig, TalkingGenerator
from .instruction import InstructionConfig, InstructionEncoder
from .prior import DiffusionPrior, PriorConfig
from .style_encoder import StyleEncoder, StyleEncoderConfig, sample_reference_frames

KIND = "stage2"
PHASES = ("talking", "instruction")


@dataclass
class LossConfig:
    velocity_weight: float = 1.0
    lip_weight: float = 2.0         # extra weight on lower-face expression channels and the jaw
    closure_weight: float = 3.0     # lower-face and jaw weight is (1 + this) on bilabial frames
    diffusion_weight: float = 30.0  # lambda^{i2s}, eq. 9


@dataclass
class Stage2Config:
    """The shipped stage 2. Sizes that several parts share live here once; each part's own
    sizes are in its sub-config (nested dicts in the checkpoint)."""
    n_expression: int = 100        # FLAME expression coefficients; motion_dim adds the pose channels
    style_dim: int = 128           # style embedding: style encoder -> generator, and the prior's sample
    cond_dim: int = 128            # aligned instruction feature c: instruction path -> prior
    n_ref_frames: int = 32         # S, reference frames for the style encoder
    content: ContentConfig = field(default_factory=ContentConfig)
    style_encoder: StyleEncoderConfig = field(default_factory=StyleEncoderConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    instruction: InstructionConfig = field(default_factory=InstructionConfig)
    prior: PriorConfig = field(default_factory=PriorConfig)
    losses: LossConfig = field(default_factory=LossConfig)

    def __post_init__(self):
        for name, cls in SUB_CONFIGS.items():
            if isinstance(getattr(self, name), dict):
                setattr(self, name, cls(**getattr(self, name)))
        if min(self.n_expression, self.style_dim, self.cond_dim, self.n_ref_frames) <= 0:
            raise ValueError("stage 2 sizes must be positive")

    @property
    def motion_dim(self) -> int:
        return self.n_expression + N_POSE_CHANNELS

    @property
    def lm_text_dim(self) -> int:
        """Width of the LM reading of an instruction (0: MiniLM alone)."""
        return self.instruction.lm_dim


SUB_CONFIGS = {
    "content": ContentConfig, "style_encoder": StyleEncoderConfig, "generator": GeneratorConfig,
    "instruction": InstructionConfig, "prior": PriorConfig, "losses": LossConfig,
}


def compute_motion_stats(motion: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std (C,) over the valid frames of motion (B, T, C)."""
    frames = motion.reshape(-1, motion.shape[-1]) if mask is None else motion[~mask]  # (N, C)
    if frames.shape[0] < 2:
        raise ValueError("need at least two valid frames to compute motion statistics")
    return frames.mean(dim=0), frames.std(dim=0)


def masked_mean(x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Mean of x (B, T, C) over the frames where keep (B, T, 1) is 1."""
    return (x * keep).sum() / (keep.sum() * x.shape[-1]).clamp(min=1)


class Stage2(nn.Module):
    def __init__(self, config: Stage2Config):
        super().__init__()
        self.config = config
        self.content = ContentEncoder(config.content)
        self.style_encoder = StyleEncoder(config.style_encoder, motion_dim=config.motion_dim, style_dim=config.style_dim)
        self.generator = TalkingGenerator(
            config.generator, content_dim=config.content.hidden, style_dim=config.style_dim, motion_dim=config.motion_dim
        )
        self.instruction = InstructionEncoder(config.instruction, style_dim=config.style_dim, cond_dim=config.cond_dim)
        self.prior = DiffusionPrior(config.prior, style_dim=config.style_dim, cond_dim=config.cond_dim)
        C = config.motion_dim
        self.register_buffer("motion_mean", torch.zeros(C))
        self.register_buffer("motion_std", torch.ones(C))
        weight = torch.ones(C)
        weight[lower_face_indices(config.n_expression)] = config.losses.lip_weight
        weight[motion_slices(config.n_expression)["jaw_pose"]] = config.losses.lip_weight
        self.register_buffer("channel_weight", weight / weight.mean(), persistent=False)
        mouth = torch.zeros(C)
        mouth[lower_face_indices(config.n_expression)] = 1.0
        mouth[motion_slices(config.n_expression)["jaw_pose"]] = 1.0
        self.register_buffer("mouth_channels", mouth, persistent=False)
        self.phase: str | None = None  # set by set_phase; None = nothing frozen

    # ---- normalisation -------------------------------------------------------------

    def set_motion_stats(self, mean: torch.Tensor, std: torch.Tensor, min_std: float = 1e-4) -> None:
        """Set the per-channel normalisation (C,) from training data; kept in the checkpoint."""
        C = self.config.motion_dim
        if mean.shape != (C,) or std.shape != (C,):
            raise ValueError(f"motion stats must have shape ({C},), got {tuple(mean.shape)} and {tuple(std.shape)}")
        with torch.no_grad():
            self.motion_mean.copy_(mean)
            self.motion_std.copy_(std.clamp(min=min_std))

    def normalize(self, motion: torch.Tensor) -> torch.Tensor:
        return (motion - self.motion_mean) / self.motion_std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.motion_std + self.motion_mean

    # ---- inference -----------------------------------------------------------------

    def encode_style(self, ref_motion: torch.Tensor, ref_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Raw reference frames (B, S, C) -> style embedding (B, D_style)."""
        self._check_motion(ref_motion)
        return self.style_encoder(self.normalize(ref_motion), ref_mask)

    def sample_style(self, text_emb: torch.Tensor, seed: int = 0, steps: int | None = None, guidance: float | None = None) -> torch.Tensor:
        """Instruction embeddings (B, text_dim [+ lm_text_dim]) -> sampled style embeddings (B, D_style)."""
        c = self.instruction(text_emb)  # (B, D_c)
        return self.prior.sample(c, seed=seed, steps=steps, guidance=guidance)

    def synthesize(self, speech: torch.Tensor, mask: torch.Tensor | None, style: torch.Tensor) -> torch.Tensor:
        """speech (B, T, D_speech), mask (B, T) True = padded, style (B, D_style) -> motion (B, T, C),
        de-normalised (FLAME units); padded frames hold the mean pose."""
        if style.shape != (speech.shape[0], self.config.style_dim):
            raise ValueError(f"style must have shape ({speech.shape[0]}, {self.config.style_dim}), got {tuple(style.shape)}")
        x = self.generator(self.content(speech, mask), style, mask)  # (B, T, C)
        if mask is not None:
            x = x.masked_fill(mask.unsqueeze(-1), 0.0)
        return self.denormalize(x)

    # ---- training ------------------------------------------------------------------

    def set_phase(self, phase: str) -> None:
        """Choose the training phase: the other phase's modules get requires_grad False and stay in eval mode."""
        if phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
        self.phase = phase
        talking = phase == "talking"
        for module in self.talking_modules():
            module.requires_grad_(talking)
        for module in self.instruction_modules():
            module.requires_grad_(not talking)
        self.train(self.training)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.phase is not None:
            frozen = self.instruction_modules() if self.phase == "talking" else self.talking_modules()
            for module in frozen:
                module.eval()
        return self

    def talking_modules(self) -> tuple[nn.Module, ...]:
        return self.content, self.style_encoder, self.generator

    def instruction_modules(self) -> tuple[nn.Module, ...]:
        return self.instruction, self.prior

    def phase_parameters(self, phase: str | None = None) -> list[nn.Parameter]:
        """The parameters a phase trains (the current phase by default), for the optimizer."""
        phase = self.phase if phase is None else phase
        if phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
        modules = self.talking_modules() if phase == "talking" else self.instruction_modules()
        return [p for m in modules for p in m.parameters()]

    def losses(self, batch: dict, phase: str | None = None, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Named losses of a phase (the one set by set_phase by default); 'total' is the one to minimise.

        'talking' batch: speech (B, T, D_speech), motion (B, T, C) raw, optional mask (B, T),
            optional bilabial (B, T) bool (frames weighted by ``closure_weight``), optional
            ref_motion (B, S, C) raw + ref_mask (B, S). Without ref_motion, S frames are drawn
            from motion itself (pass frames from outside the training window to follow the
            paper more closely).
        'instruction' batch: text_emb (B, text_dim), and either style (B, D_style) precomputed
            with the frozen encoder, or ref_motion (+ ref_mask), or motion (+ mask) to draw
            reference frames from; optional group (B,) int labels for the contrastive loss.
        ``generator`` (CPU) makes the random draws reproducible.
        """
        phase = self.phase if phase is None else phase
        if phase is None:
            raise ValueError("no training phase: call set_phase('talking' | 'instruction') or pass phase")
        if phase == "talking":
            return self._talking_losses(batch, generator)
        if phase == "instruction":
            return self._instruction_losses(batch, generator)
        raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")

    def _reference(self, batch: dict, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        if "ref_motion" in batch:
            return batch["ref_motion"], batch.get("ref_mask")
        if "motion" not in batch:
            raise ValueError("batch needs 'ref_motion' or 'motion' to take reference frames from")
        return sample_reference_frames(batch["motion"], self.config.n_ref_frames, batch.get("mask"), generator=generator)

    def _talking_losses(self, batch: dict, generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        motion, speech, mask = batch["motion"], batch["speech"], batch.get("mask")
        self._check_motion(motion)
        if motion.shape[:2] != speech.shape[:2]:
            raise ValueError(f"motion {tuple(motion.shape)} and speech {tuple(speech.shape)} differ in batch or length")
        ref_motion, ref_mask = self._reference(batch, generator)
        style = self.encode_style(ref_motion, ref_mask)                       # (B, D_style)
        pred = self.generator(self.content(speech, mask), style, mask)        # (B, T, C), normalised
        target = self.normalize(motion)                                       # (B, T, C)
        keep = torch.ones_like(target[..., :1]) if mask is None else (~mask).unsqueeze(-1).to(target.dtype)  # (B, T, 1)
        weight = self.channel_weight.expand_as(target)                        # (B, T, C)
        if batch.get("bilabial") is not None and self.config.losses.closure_weight > 0:
            # missing a closure costs more than closing a little early: recall of P/B/M
            closing = batch["bilabial"].unsqueeze(-1).to(target.dtype) * self.mouth_channels  # (B, T, C)
            weight = weight * (1.0 + self.config.losses.closure_weight * closing)
        recon = masked_mean((pred - target).abs() * weight, keep)
        keep_vel = keep[:, 1:] * keep[:, :-1]                                 # (B, T-1, 1)
        velocity = masked_mean((pred.diff(dim=1) - target.diff(dim=1)).abs() * weight[:, 1:], keep_vel)
        total = recon + self.config.losses.velocity_weight * velocity
        return {"recon": recon, "velocity": velocity, "total": total}

    def _instruction_losses(self, batch: dict, generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        style = batch.get("style")
        if style is None:
            with torch.no_grad():
                style = self.encode_style(*self._reference(batch, generator))  # (B, D_style)
        c = self.instruction(batch["text_emb"])                                 # (B, D_c)
        contrastive = self.instruction.contrastive_loss(c, style, batch.get("group"))
        diffusion = self.prior.loss(style, c, generator=generator)
        total = contrastive + self.config.losses.diffusion_weight * diffusion
        return {"contrastive": contrastive, "diffusion": diffusion, "total": total}

    def _check_motion(self, motion: torch.Tensor) -> None:
        if motion.shape[-1] != self.config.motion_dim:
            raise ValueError(f"motion has {motion.shape[-1]} channels, this model uses {self.config.motion_dim} (E={self.config.n_expression} + 15)")


def save_stage2(path, model: Stage2, extra: dict | None = None) -> None:
    """Write a Stage2 checkpoint. The trainer passes extra={'trained': True, 'steps': n}; without it
    the file is marked untrained."""
    save_checkpoint(path, model, model.config, KIND, {"trained": False, **(extra or {})})


def load_stage2(path, map_location="cpu", require_trained: bool = False) -> tuple[Stage2, dict]:
    """Load a Stage2 checkpoint in eval mode; returns (model, extra). With require_trained,
    a checkpoint not marked trained raises CheckpointError."""
    model, extra = load_checkpoint(path, Stage2, Stage2Config, KIND, map_location)
    if require_trained and not extra.get("trained", False):
        raise CheckpointError(f"{path}: the stage 2 weights were never trained (extra={extra})")
    return model.eval(), extra

"""The whole Stage 2 model with a tiny config: motion packing, training phases, checkpoints."""

import numpy as np
import pytest
import torch

from backend.checkpoint import CheckpointError
from backend.motion import ARRAY_KEYS, Motion, pack_arrays, unpack_arrays
from backend.stage2.model import (
    Stage2,
    Stage2Config,
    compute_motion_stats,
    load_stage2,
    save_stage2,
)

E = 10  # tiny expression space; C = 25


def tiny_config(instruction=None, losses=None):
    """A tiny Stage2Config; ``instruction`` and ``losses`` update those sub-configs."""
    return Stage2Config(
        n_expression=E, style_dim=8, cond_dim=8, n_ref_frames=6,
        content={"speech_dim": 12, "hidden": 32, "layers": 1, "kernel": 3, "dropout": 0.0},
        generator={"hidden": 32, "layers": 2, "heads": 2, "radius": 4, "dropout": 0.0},
        style_encoder={"hidden": 16, "layers": 1, "heads": 2, "dropout": 0.0},
        instruction={"text_dim": 16, "hidden": 16, "proj_dim": 8, "dropout": 0.0, "bank_size": 0, "lm_dim": 0, "part_drop": 0.0,
                     **(instruction or {})},
        prior={"hidden": 32, "layers": 2, "heads": 2, "timesteps": 50, "sample_steps": 5},
        losses=losses or {},
    )


def toy_batch(B=4, T=24, seed=0):
    """Motion that depends on the speech (content) and on a per-clip offset (style)."""
    g = torch.Generator().manual_seed(seed)
    speech = torch.randn(B, T, 12, generator=g)
    offset = torch.randn(B, 1, E + 15, generator=g)
    motion = 0.5 * speech.repeat(1, 1, 3)[..., : E + 15] + offset  # (B, T, C)
    mask = torch.arange(T)[None, :] >= torch.tensor([T, T, T - 5, T - 9][:B])[:, None]
    return {"speech": speech, "motion": motion, "mask": mask, "text_emb": torch.randn(B, 16, generator=g)}


def test_pack_unpack_round_trip_numpy_and_torch():
    parts = dict(zip(ARRAY_KEYS, [np.random.rand(7, n).astype(np.float32) for n in (E, 3, 3, 3, 6)]))
    packed = pack_arrays(parts)
    assert packed.shape == (7, E + 15)
    for name, part in parts.items():
        np.testing.assert_array_equal(unpack_arrays(packed)[name], part)
    tensors = {k: torch.from_numpy(p)[None] for k, p in parts.items()}
    packed_t = pack_arrays(tensors)
    assert packed_t.shape == (1, 7, E + 15)
    assert torch.equal(unpack_arrays(packed_t)["eye_pose"], tensors["eye_pose"])
    with pytest.raises(ValueError):
        unpack_arrays(np.zeros((3, 15)))
    motion = Motion.from_packed(packed, 25.0, instruction="x")
    assert motion.instruction == "x" and motion.n_expression == E
    np.testing.assert_array_equal(motion.pack(), packed)


def test_motion_stats_and_normalisation_round_trip():
    model = Stage2(tiny_config())
    batch = toy_batch()
    mean, std = compute_motion_stats(batch["motion"], batch["mask"])
    assert mean.shape == (E + 15,)
    valid = batch["motion"][~batch["mask"]]
    assert torch.allclose(mean, valid.mean(0))
    model.set_motion_stats(mean, std)
    assert torch.allclose(model.denormalize(model.normalize(batch["motion"])), batch["motion"], atol=1e-5)
    with pytest.raises(ValueError):
        model.set_motion_stats(mean[:-1], std[:-1])


def test_synthesize_shapes_and_padding():
    torch.manual_seed(0)
    model = Stage2(tiny_config()).eval()
    batch = toy_batch()
    style = model.sample_style(batch["text_emb"], seed=1)
    assert style.shape == (4, 8)
    motion = model.synthesize(batch["speech"], batch["mask"], style)
    assert motion.shape == (4, 24, E + 15)
    # Clip 3 has 15 valid frames: it equals the clip run alone.
    alone = model.synthesize(batch["speech"][3:, :15], None, style[3:])
    assert torch.allclose(alone[0], motion[3, :15], atol=1e-5)
    with pytest.raises(ValueError):
        model.synthesize(batch["speech"], batch["mask"], style[:2])


def train(model, batch, steps, lr=3e-3):
    opt = torch.optim.Adam(model.phase_parameters(), lr=lr)
    gen = torch.Generator().manual_seed(0)
    history = []
    for _ in range(steps):
        losses = model.losses(batch, generator=gen)
        opt.zero_grad()
        losses["total"].backward()
        opt.step()
        history.append({k: v.item() for k, v in losses.items()})
    return history


def test_talking_loss_drops_on_a_tiny_batch():
    torch.manual_seed(0)
    model = Stage2(tiny_config())
    batch = toy_batch()
    model.set_motion_stats(*compute_motion_stats(batch["motion"], batch["mask"]))
    model.set_phase("talking")
    model.train()
    history = train(model, batch, 80)
    assert set(history[0]) == {"recon", "velocity", "total"}
    assert history[-1]["total"] < 0.5 * history[0]["total"]
    # The instruction path was frozen and untouched.
    assert all(p.grad is None for p in model.prior.parameters())
    assert not model.prior.training


def test_instruction_phase_freezes_the_talking_prior():
    torch.manual_seed(0)
    model = Stage2(tiny_config())
    batch = toy_batch()
    batch["group"] = torch.tensor([0, 1, 2, 2])
    model.set_phase("instruction")
    model.train()
    assert not model.style_encoder.training and model.prior.training
    before = {k: v.clone() for k, v in model.style_encoder.state_dict().items()}
    history = train(model, batch, 60)
    assert set(history[0]) == {"contrastive", "diffusion", "total"}
    assert history[0]["total"] == pytest.approx(history[0]["contrastive"] + 30.0 * history[0]["diffusion"], rel=1e-5)
    assert history[-1]["total"] < 0.5 * history[0]["total"]
    after = model.style_encoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in model.generator.parameters())


def test_losses_need_a_phase():
    model = Stage2(tiny_config())
    with pytest.raises(ValueError):
        model.losses(toy_batch())
    with pytest.raises(ValueError):
        model.set_phase("both")


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    torch.manual_seed(0)
    model = Stage2(tiny_config())
    batch = toy_batch()
    model.set_motion_stats(*compute_motion_stats(batch["motion"], batch["mask"]))
    for p in model.parameters():  # move away from the zero-initialised modulation
        p.data.add_(0.02 * torch.randn_like(p))
    model.eval()
    path = tmp_path / "stage2.safetensors"
    save_stage2(path, model, {"trained": True, "steps": 12})
    loaded, extra = load_stage2(path, require_trained=True)
    assert extra == {"trained": True, "steps": 12}
    assert loaded.config == model.config and not loaded.training
    assert torch.equal(loaded.motion_std, model.motion_std)
    style = model.sample_style(batch["text_emb"], seed=3)
    assert torch.equal(loaded.sample_style(batch["text_emb"], seed=3), style)
    with torch.no_grad():
        assert torch.equal(
            loaded.synthesize(batch["speech"], batch["mask"], style), model.synthesize(batch["speech"], batch["mask"], style)
        )


def test_untrained_checkpoint_is_marked_and_refused(tmp_path):
    path = tmp_path / "untrained.safetensors"
    save_stage2(path, Stage2(tiny_config()))
    model, extra = load_stage2(path)
    assert extra["trained"] is False
    with pytest.raises(CheckpointError):
        load_stage2(path, require_trained=True)


def test_closure_weight_raises_the_cost_of_mouth_errors_on_bilabial_frames():
    torch.manual_seed(0)
    model = Stage2(tiny_config(losses={"closure_weight": 3.0})).eval()
    C = model.config.motion_dim
    batch = {"speech": torch.randn(2, 20, model.config.content.speech_dim), "motion": torch.randn(2, 20, C)}
    plain = model.losses(batch, phase="talking", generator=torch.Generator().manual_seed(0))
    flagged = {**batch, "bilabial": torch.zeros(2, 20, dtype=torch.bool)}
    same = model.losses(flagged, phase="talking", generator=torch.Generator().manual_seed(0))
    assert torch.allclose(plain["total"], same["total"])
    flagged["bilabial"][:, 5:10] = True
    heavier = model.losses(flagged, phase="talking", generator=torch.Generator().manual_seed(0))
    assert heavier["recon"] > plain["recon"]
    off = Stage2(tiny_config(losses={"closure_weight": 0.0})).eval()
    off.load_state_dict(model.state_dict())
    assert torch.allclose(off.losses(flagged, phase="talking", generator=torch.Generator().manual_seed(0))["total"], plain["total"])



def test_instruction_bank_reads_new_wording_as_a_mix_of_training_sentences():
    torch.manual_seed(0)
    model = Stage2(tiny_config(instruction={"bank_size": 6, "bank_k": 2, "bank_temperature": 0.01})).eval()
    with pytest.raises(ValueError, match="never filled"):
        model.instruction(torch.randn(1, model.config.instruction.text_dim))
    bank = torch.nn.functional.normalize(torch.randn(6, model.config.instruction.text_dim), dim=-1)
    model.instruction.set_bank(bank * 3.0)  # stored unit length
    assert torch.allclose(model.instruction.bank, bank)
    # a bank sentence reads as itself; a new one as a mix of its two nearest
    assert torch.allclose(model.instruction.read(bank[:1]), bank[:1], atol=1e-4)
    new = bank[2] + 0.9 * bank[4]
    mix = model.instruction.read(new[None])[0]
    weights = torch.linalg.lstsq(bank[[2, 4]].T, mix[:, None]).solution[:, 0]
    assert torch.allclose(weights.sum(), torch.tensor(1.0), atol=1e-4) and (weights > 0).all()
    assert torch.allclose(bank[[2, 4]].T @ weights, mix, atol=1e-4)
    with pytest.raises(ValueError, match="bank"):
        model.instruction.set_bank(torch.randn(5, model.config.instruction.text_dim))


def test_lm_reading_goes_beside_the_bank_and_is_dropped_only_in_training():
    torch.manual_seed(0)
    model = Stage2(tiny_config(instruction={"bank_size": 4, "bank_k": 2, "lm_dim": 5, "part_drop": 0.3}))
    D = model.config.instruction.text_dim
    model.instruction.set_bank(torch.nn.functional.normalize(torch.randn(4, D), dim=-1))
    with pytest.raises(ValueError, match=rf"{D} \(MiniLM\) \+ 5 \(LM\)"):
        model.instruction(torch.randn(1, D))
    model.eval()
    text = torch.randn(1, D + 5)
    other_lm = torch.cat([text[:, :D], torch.randn(1, 5)], dim=-1)
    assert not torch.allclose(model.instruction(text), model.instruction(other_lm))  # the LM part is read
    assert torch.equal(model.instruction(text), model.instruction(text))
    assert model.sample_style(text, seed=1).shape == (1, model.config.style_dim)
    model.train()
    outs = model.instruction(text.expand(64, -1))  # dropout is 0: rows differ only where a part was dropped
    assert len({tuple(o.round(decimals=5).tolist()) for o in outs}) == 3
    with pytest.raises(ValueError, match="part_drop"):
        Stage2(tiny_config(instruction={"lm_dim": 5, "part_drop": 0.5}))

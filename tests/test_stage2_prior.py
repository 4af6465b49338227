"""Instruction-style alignment (eq. 7) and the diffusion prior (eq. 8), tiny configs on CPU."""

import pytest
import torch

from backend.stage2.instruction import InstructionConfig, InstructionEncoder
from backend.stage2.prior import DiffusionPrior, PriorConfig, cosine_alphas_cumprod


def tiny_instruction():
    return InstructionEncoder(InstructionConfig(text_dim=12, hidden=16, proj_dim=8, dropout=0.0, bank_size=0, lm_dim=0, part_drop=0.0), style_dim=6, cond_dim=8)


def tiny_prior(**kw):
    return DiffusionPrior(PriorConfig(hidden=32, layers=2, heads=2, timesteps=100, **kw), style_dim=6, cond_dim=8)


def test_contrastive_loss_prefers_matched_pairs():
    torch.manual_seed(0)
    model = tiny_instruction()
    text = torch.randn(8, 12)
    c = model(text)
    assert c.shape == (8, 8)
    # Styles that are exactly the projected instruction features: each pair matches only itself.
    with torch.no_grad():
        model.style_proj.weight.zero_()
        model.style_proj.bias.zero_()
        model.style_proj.weight[:, :6] = torch.eye(8)[:, :6]
        style = model.text_proj(c)[:, :6]
    matched = model.contrastive_loss(c, style)
    shuffled = model.contrastive_loss(c, style[torch.roll(torch.arange(8), 1)])
    assert matched < shuffled


def test_contrastive_loss_training_aligns_pairs():
    torch.manual_seed(1)
    model = tiny_instruction()
    text, style = torch.randn(16, 12), torch.randn(16, 6)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = model.contrastive_loss(model(text), style).item()
    for _ in range(40):
        loss = model.contrastive_loss(model(text), style)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first
    shuffled = model.contrastive_loss(model(text), style[torch.randperm(16)])
    assert loss < shuffled


def test_group_labels_remove_same_group_negatives():
    torch.manual_seed(0)
    model = tiny_instruction()
    # Clips 0 and 1 share one instruction (same group) but have different styles.
    text = torch.randn(4, 12)
    text[1] = text[0]
    c, style = model(text), torch.randn(4, 6)
    group = torch.tensor([0, 0, 1, 2])
    plain = model.contrastive_loss(c, style)
    grouped = model.contrastive_loss(c, style, group)
    assert grouped < plain
    # With every clip in its own group the loss is the plain one.
    assert torch.allclose(model.contrastive_loss(c, style, torch.arange(4)), plain)
    with pytest.raises(ValueError):
        model.contrastive_loss(c, style, torch.zeros(3, dtype=torch.long))


def test_cosine_schedule_decreases_from_one_to_near_zero():
    ab = cosine_alphas_cumprod(100)
    assert ab.shape == (100,)
    assert torch.all(ab[1:] < ab[:-1]) and 0.99 < ab[0] <= 1.0 and ab[-1] < 1e-3


def test_prior_loss_drops_when_overfitting_a_tiny_batch():
    torch.manual_seed(0)
    prior = tiny_prior(cond_drop=0.0)
    z0, c = torch.randn(4, 6), torch.randn(4, 8)
    opt = torch.optim.Adam(prior.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(200):
        loss = prior.loss(z0, c, generator=gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-20:]) / 20 < 0.3 * sum(losses[:20]) / 20
    # The trained prior samples close to the embedding it memorised for each condition.
    prior.eval()
    sample = prior.sample(c, seed=0, steps=10)
    assert (sample - z0).pow(2).mean() < 0.5 * z0.pow(2).mean()


def test_sampling_is_deterministic_per_seed_and_differs_across_seeds():
    torch.manual_seed(0)
    prior = tiny_prior().eval()
    c = torch.randn(3, 8)
    a = prior.sample(c, seed=7, steps=5)
    assert a.shape == (3, 6)
    assert torch.equal(a, prior.sample(c, seed=7, steps=5))
    assert not torch.allclose(a, prior.sample(c, seed=8, steps=5))
    guided = prior.sample(c, seed=7, steps=5, guidance=3.0)
    assert guided.shape == (3, 6) and not torch.allclose(guided, a)
    with pytest.raises(ValueError):
        prior.sample(c, steps=0)
    with pytest.raises(ValueError):
        prior.sample(c, guidance=-1.0)


def test_condition_dropout_uses_the_null_condition():
    torch.manual_seed(0)
    prior = tiny_prior(cond_drop=1.0)
    z0 = torch.randn(4, 6)
    # With every condition dropped, the loss does not depend on c.
    a = prior.loss(z0, torch.randn(4, 8), generator=torch.Generator().manual_seed(1))
    b = prior.loss(z0, torch.randn(4, 8), generator=torch.Generator().manual_seed(1))
    assert torch.allclose(a, b)

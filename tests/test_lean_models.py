"""The plain-torch text models (``language.bert``, ``language.llama``) against transformers' own, on the shipped weights.

Tolerances: float32 on the CPU, the same weights, different kernels (the attention is
``scaled_dot_product_attention`` here, transformers' sdpa path with its own masks): hidden states
and logits agree to 1e-4 absolute (the logits span about +-30), MiniLM's unit embeddings to 1e-5.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from backend.language.bert import BertModel
from backend.language.llama import KVCache, LlamaForCausalLM, llama_config
from backend.files import cache_folder
from backend.language.llm import DEFAULT_NAME, LLMError, cache_argument, cache_of, load_llm
from backend.language.text import default_minilm_folder, load_text_encoder

ROOT = Path(__file__).resolve().parents[1]
SMOLLM2_CACHE = cache_folder() / "llm" / DEFAULT_NAME  # where load_llm() keeps the shipped model
ESPEAK_LINES = ["I can't believe you did that to me.", "Please stay calm, everything will be fine.",
                "Why would anyone leave the door open in the middle of winter?"]
TEXTS = ["She is furious and shouts.", "a calm man", "Happy! The corners of her mouth lift, her eyes widen a little."]


@pytest.fixture(scope="module")
def minilm_pair():
    from transformers import AutoModel

    ours = load_text_encoder()
    theirs = AutoModel.from_pretrained(str(default_minilm_folder()), local_files_only=True).eval()
    return ours, theirs


@pytest.fixture(scope="module")
def llama_pair():
    """The shipped SmolLM2 (through load_llm: ours) and transformers' model on the same cache folder."""
    from transformers import AutoModelForCausalLM

    ours, tokenizer = load_llm()
    assert isinstance(ours, LlamaForCausalLM)
    folder = SMOLLM2_CACHE
    theirs = AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True, dtype=torch.float32).eval()
    return ours, theirs, tokenizer


def test_minilm_runs_on_the_plain_bert_and_matches_transformers(minilm_pair):
    ours, theirs = minilm_pair
    assert isinstance(ours.model, BertModel)
    batch = ours._batch(TEXTS)  # padded to the longest: the short rows carry padding
    assert (batch["attention_mask"] == 0).any()
    with torch.no_grad():
        a = ours.model(**batch).last_hidden_state
        b = theirs(**batch).last_hidden_state
    valid = batch["attention_mask"].bool()
    assert (a[valid] - b[valid]).abs().max() < 1e-4
    mask = batch["attention_mask"].unsqueeze(-1).float()
    pooled = torch.nn.functional.normalize((b * mask).sum(1) / mask.sum(1), dim=-1)
    assert (ours.encode(TEXTS) - pooled).abs().max() < 1e-5


def test_llama_logits_match_transformers_with_right_and_left_padding(llama_pair):
    ours, theirs, tok = llama_pair
    rows = [tok(t, add_special_tokens=False)["input_ids"] for t in TEXTS]
    width = max(len(r) for r in rows)
    right = torch.tensor([r + [tok.eos_token_id] * (width - len(r)) for r in rows])
    right_mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    with torch.no_grad():  # LMTextEncoder's call: the base model, padded on the right
        a = ours.base_model(input_ids=right, attention_mask=right_mask).last_hidden_state
        b = theirs.base_model(input_ids=right, attention_mask=right_mask).last_hidden_state
    valid = right_mask.bool()
    assert (a[valid] - b[valid]).abs().max() < 1e-4
    # stage 1's training call: embeddings padded on the left, the head on the last positions only
    left = torch.stack([torch.cat([torch.full((width - len(r),), tok.eos_token_id), torch.tensor(r)]) for r in rows])
    left_mask = torch.stack([torch.cat([torch.zeros(width - len(r)), torch.ones(len(r))]) for r in rows]).long()
    embeds = ours.get_input_embeddings()(left)
    with torch.no_grad():
        a = ours(inputs_embeds=embeds, attention_mask=left_mask, logits_to_keep=3).logits
        b = theirs(inputs_embeds=embeds, attention_mask=left_mask, logits_to_keep=3).logits
    assert a.shape == b.shape == (3, 3, 49152)
    assert (a - b).abs().max() < 1e-4


def test_a_cached_step_by_step_decode_matches_one_full_forward(llama_pair):
    ours, theirs, tok = llama_pair
    ids = torch.tensor([tok(TEXTS[2], add_special_tokens=False)["input_ids"]])  # (1, L)
    with torch.no_grad():
        full = ours(input_ids=ids).logits  # (1, L, V)
        out = ours(inputs_embeds=ours.get_input_embeddings()(ids[:, :4]), use_cache=True)
        cache, steps = cache_of(out), [out.logits]
        assert isinstance(cache, KVCache) and cache_argument(ours) == "cache"
        for t in range(4, ids.shape[1]):
            out = ours(input_ids=ids[:, t : t + 1], **{cache_argument(ours): cache}, use_cache=True)
            steps.append(out.logits)
        assert cache.get_seq_length() == ids.shape[1]
        stepwise = torch.cat(steps, dim=1)
        reference = theirs(input_ids=ids).logits
    assert (stepwise - full).abs().max() < 1e-4
    assert (full - reference).abs().max() < 1e-4


def test_the_cache_repeats_and_selects_rows(llama_pair):
    ours, _, tok = llama_pair
    ids = torch.tensor([tok("The woman smiles", add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        out = ours(input_ids=ids, use_cache=True)
        cache = out.cache
        cache.batch_repeat_interleave(3)
        nxt = torch.tensor([[10], [20], [30]])
        three = ours(input_ids=nxt, cache=cache, use_cache=True).logits[:, -1]  # (3, V)
        cache.batch_select_indices(torch.tensor([2]))
        again = ours(input_ids=torch.tensor([[40]]), cache=cache, use_cache=True).logits[:, -1]
        direct = ours(input_ids=torch.cat([ids, torch.tensor([[30, 40]])], dim=1)).logits[:, -1]
        single = ours(input_ids=torch.cat([ids, torch.tensor([[20]])], dim=1)).logits[:, -1]
    assert (again - direct).abs().max() < 1e-4
    assert (three[1] - single[0]).abs().max() < 1e-4


def test_gradients_reach_the_soft_prompt_as_through_transformers(llama_pair):
    ours, theirs, tok = llama_pair
    ids = torch.tensor([tok("She frowns and looks away", add_special_tokens=False)["input_ids"]] * 2)
    grads = []
    for model in (ours, theirs):
        torch.manual_seed(0)
        soft = (torch.randn(2, 3, 576) * 0.02).requires_grad_(True)
        embeds = torch.cat([soft, model.get_input_embeddings()(ids)], dim=1)
        mask = torch.ones(embeds.shape[:2], dtype=torch.long)
        mask[1, :2] = 0  # left padding on the second row
        logits = model(inputs_embeds=embeds, attention_mask=mask, logits_to_keep=ids.shape[1] + 1).logits
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), ids)
        loss.backward()
        grads.append(soft.grad)
    assert torch.isfinite(grads[0]).all() and grads[0].abs().sum() > 0
    assert (grads[0] - grads[1]).abs().max() < 1e-5 * max(1.0, float(grads[1].abs().max()))
    assert not any(p.requires_grad for p in ours.parameters())


def test_configs_the_plain_llama_does_not_run_stay_with_transformers(tmp_path):
    base = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 64, "num_attention_heads": 4}
    for extra in ({"rope_scaling": {"rope_type": "linear", "factor": 2.0}},
                  {"rope_parameters": {"rope_type": "llama3", "rope_theta": 5e5}},
                  {"model_type": "mistral"}, {"hidden_act": "gelu"}):
        (tmp_path / "config.json").write_text(json.dumps({**base, **extra}))
        assert llama_config(tmp_path) is None, extra
    (tmp_path / "config.json").write_text(json.dumps({**base, "rope_theta": 5e5}))
    config = llama_config(tmp_path)
    assert (config.head_dim, config.num_key_value_heads, config.rope_theta, config.tie_word_embeddings) == (16, 4, 5e5, False)


def test_a_llama_folder_with_wrong_weights_is_a_clear_error(tmp_path, llama_pair):
    from safetensors.torch import save_file

    folder = SMOLLM2_CACHE
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (tmp_path / name).write_bytes((folder / name).read_bytes())
    save_file({"model.embed_tokens.weight": torch.zeros(4, 4)}, str(tmp_path / "model.safetensors"))
    with pytest.raises(LLMError, match="cannot load a causal LM"):
        load_llm(tmp_path)


@pytest.mark.parametrize("device", ["cuda"])
def test_cuda_autocast_runs_in_bfloat16(device, llama_pair):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    ours, theirs, tok = llama_pair
    ids = torch.tensor([tok(TEXTS[0], add_special_tokens=False)["input_ids"]], device=device)
    ours.to(device)
    try:
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
            out = ours(inputs_embeds=ours.get_input_embeddings()(ids), use_cache=True)
            step = ours(input_ids=ids[:, -1:], cache=out.cache, use_cache=True)
        assert out.logits.dtype == torch.bfloat16 and torch.isfinite(step.logits).all()
        with torch.no_grad():
            reference = theirs(input_ids=ids.cpu()).logits
        assert (out.logits.float().cpu() - reference).abs().max() < 0.5  # bf16 rounding over 30 layers
    finally:
        ours.to("cpu")


def test_a_pipeline_analyzes_without_transformers_modeling_code(tmp_path):
    script = (
        "import sys\n"
        "from backend.audio import load_audio\n"
        "from backend.pipeline import Pipeline, PipelineConfig\n"
        "pipe = Pipeline(PipelineConfig(device='cpu', describe_samples=0))\n"
        f"analysis = pipe.analyze(load_audio({str(ROOT / 'assets/demo/line.wav')!r}))\n"
        "assert analysis.instruction\n"
        "print(sorted(m for m in sys.modules if m.startswith('transformers.')))\n"
    )
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    loaded = set(eval(run.stdout.strip().splitlines()[-1]))
    for heavy in ("transformers.models.bert.modeling_bert", "transformers.models.llama.modeling_llama",
                  "transformers.modeling_utils"):
        assert heavy not in loaded


def test_stage1_writes_the_same_greedy_sentences_as_through_transformers(tmp_path, llama_pair):
    """The shipped stage 1 on the demo line and espeak-ng lines: the same decode, either LLM."""
    import shutil

    from backend.audio import load_audio
    from backend.pipeline import Pipeline, PipelineConfig

    ours, theirs, tok = llama_pair
    clips = [ROOT / "assets/demo/line.wav"]
    if shutil.which("espeak-ng"):
        for i, line in enumerate(ESPEAK_LINES):
            subprocess.run(["espeak-ng", "-w", str(tmp_path / f"{i}.wav"), line], check=True, capture_output=True)
            clips.append(tmp_path / f"{i}.wav")
    pipe = Pipeline(PipelineConfig(device="cpu", describe_samples=0))
    sentences = {}
    for name, model in (("ours", ours), ("transformers", theirs)):
        pipe._llm = (model, tok)
        sentences[name] = [pipe.analyze(load_audio(str(c))).instruction for c in clips]
    assert all(sentences["ours"])
    assert sentences["ours"] == sentences["transformers"]

"""Stage 1: Q-Former (masks, contrastive alignment) and the projection into a frozen LLM."""


import helpers
import pytest
import torch

from backend.checkpoint import CheckpointError, save_checkpoint
from backend.stage1.instructor import (
    IGNORE,
    Instructor,
    InstructorConfig,
    Stage1,
    Stage1Config,
    decode,
    first_sentence,
    load_stage1,
    save_stage1,
)
from backend.stage1.qformer import QFormer, QFormerConfig
from backend.stage1.templates import TEMPLATES
from backend.stage1.vote import vote

TARGETS = ["The speaker smiles with raised cheeks.", "Brows lowered, lips pressed in anger."]


def tiny_qformer_config(**kw):
    return QFormerConfig(**{"audio_dim": 12, "hidden": 16, "n_queries": 4, "n_layers": 2, "n_heads": 2, "text_dim": 10, "embed_dim": 8, "dropout": 0.0, **kw})


def tiny_stage1():
    torch.manual_seed(0)
    return Stage1(Stage1Config(qformer=tiny_qformer_config(), instructor=InstructorConfig(hidden=16, llm_dim=16, max_new_tokens=6, n_prefix=0)))


def tiny_llm(chat_template=None):
    """A tiny random Llama over the templates' and targets' words; ``initializer_range=0.5`` makes it
    sensitive enough to its input that the soft prompt can steer it (with 0.02 it hardly depends on it)."""
    from backend.language.llm import freeze

    text = " ".join(TEMPLATES + tuple(TARGETS) + ("user", "assistant", ":"))
    model, tokenizer = helpers.tiny_llm(text, seed=1, chat_template=chat_template, initializer_range=0.5)
    return freeze(model), tokenizer


# ------------------------------------------------------------------ Q-Former


def test_qformer_reads_the_words_heard_and_stands_in_for_missing_ones():
    torch.manual_seed(0)
    qformer = QFormer(tiny_qformer_config(words_dim=10)).eval()
    feats, words = torch.randn(3, 20, 12), torch.randn(3, 10)
    words[1] = 0  # nothing heard for item 1
    with torch.no_grad():
        qformer.no_words.normal_()  # trained, it is not zero
        out, alone = qformer(feats, words=words), qformer(feats)
        other = qformer(feats, words=torch.randn(3, 10))
    assert torch.allclose(out[1], alone[1], atol=1e-6)  # a zero row is the same as no words
    assert not torch.allclose(out[0], alone[0], atol=1e-3) and not torch.allclose(out[0], other[0], atol=1e-3)
    with pytest.raises(ValueError, match="words of shape"):
        qformer(feats, words=torch.randn(3, 7))
    speech_only = QFormer(tiny_qformer_config()).eval()
    assert torch.equal(speech_only(feats, words=words), speech_only(feats))  # words_dim 0 ignores them
    with pytest.raises(ValueError, match="words_dim"):
        tiny_qformer_config(words_dim=-1)


def test_words_train_the_qformer_with_the_contrastive_loss():
    qformer = QFormer(tiny_qformer_config(words_dim=10))
    loss = qformer.contrastive_loss(qformer(torch.randn(4, 9, 12), words=torch.randn(4, 10)), torch.randn(4, 10))
    loss.backward()
    assert qformer.words_in[1].weight.grad.abs().sum() > 0


def test_qformer_shapes():
    qformer = QFormer(tiny_qformer_config()).eval()
    out = qformer(torch.randn(3, 20, 12))
    assert out.shape == (3, 4, 16)
    assert qformer.audio_embedding(out).shape == (3, 8)
    assert torch.allclose(qformer.text_embedding(torch.randn(3, 10)).norm(dim=1), torch.ones(3))


def test_qformer_ignores_padded_frames():
    torch.manual_seed(0)
    qformer = QFormer(tiny_qformer_config()).eval()
    feats = torch.randn(1, 15, 12)
    padded = torch.cat([feats, 100 * torch.randn(1, 6, 12)], dim=1)  # (1, 21, 12): 6 garbage frames
    mask = torch.zeros(1, 21, dtype=torch.bool)
    mask[:, :15] = True
    assert torch.allclose(qformer(padded, mask), qformer(feats), atol=1e-5)
    assert not torch.allclose(qformer(padded), qformer(feats), atol=1e-3)  # without the mask they matter


def test_qformer_input_errors():
    qformer = QFormer(tiny_qformer_config())
    with pytest.raises(ValueError, match="expected speech features"):
        qformer(torch.randn(1, 5, 7))
    with pytest.raises(ValueError, match="at least one unmasked frame"):
        qformer(torch.randn(2, 5, 12), torch.tensor([[True] * 5, [False] * 5]))
    with pytest.raises(ValueError, match="divisible"):
        QFormerConfig(hidden=10, n_heads=3)


def test_contrastive_training_separates_matched_from_shuffled():
    torch.manual_seed(0)
    qformer = QFormer(tiny_qformer_config())
    audio, text = torch.randn(8, 10, 12), torch.randn(8, 10)
    optimizer = torch.optim.Adam(qformer.parameters(), lr=3e-3)
    for _ in range(60):
        optimizer.zero_grad()
        loss = qformer.contrastive_loss(qformer(audio), text)
        loss.backward()
        optimizer.step()
    qformer.eval()
    with torch.no_grad():
        out = qformer(audio)
        matched = qformer.contrastive_loss(out, text)
        shuffled = qformer.contrastive_loss(out, text[torch.roll(torch.arange(8), 1)])
    assert matched < shuffled
    assert matched < torch.log(torch.tensor(8.0))  # better than chance


def test_contrastive_loss_treats_repeated_instructions_as_positives():
    torch.manual_seed(0)
    qformer = QFormer(tiny_qformer_config()).eval()
    out = qformer(torch.randn(4, 10, 12))
    a, b = torch.randn(10), torch.randn(10)
    text = torch.stack([a, a, b, b])
    # swapping the two clips that share an instruction changes nothing
    assert torch.allclose(qformer.contrastive_loss(out, text), qformer.contrastive_loss(out[[1, 0, 3, 2]], text))


def test_contrastive_loss_leaves_same_group_items_out_of_the_negatives():
    torch.manual_seed(0)
    qformer = QFormer(tiny_qformer_config()).eval()
    out, text = qformer(torch.randn(4, 10, 12)), torch.randn(4, 10)
    plain = qformer.contrastive_loss(out, text)
    # one group for all: every item is its own only candidate, nothing is left to push apart
    assert qformer.contrastive_loss(out, text, torch.zeros(4, dtype=torch.long)) < 1e-4 < plain
    # distinct groups: the plain loss
    assert torch.allclose(qformer.contrastive_loss(out, text, torch.arange(4)), plain)
    two = qformer.contrastive_loss(out, text, torch.tensor([0, 0, 1, 1]))
    assert torch.isfinite(two) and 0 < two < plain
    with pytest.raises(ValueError, match="group"):
        qformer.contrastive_loss(out, text, torch.zeros(3, dtype=torch.long))


# ------------------------------------------------------------- projection + LLM


def test_prompt_layout_and_labels():
    llm, tokenizer = tiny_llm()
    stage1 = tiny_stage1()
    query_out = stage1.qformer(torch.randn(2, 10, 12))
    batch = stage1.instructor.build_inputs(query_out, [0, 3], tokenizer, llm, targets=TARGETS)
    inputs, mask, labels = batch["inputs_embeds"], batch["attention_mask"], batch["labels"]
    assert inputs.shape[:2] == mask.shape == labels.shape and inputs.shape[2] == 16
    for b in range(2):
        _, after = stage1.instructor.prompt_ids(tokenizer, TEMPLATES[[0, 3][b]])
        answer = tokenizer(TARGETS[b], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        n = 1 + 4 + len(after) + len(answer)  # BOS + soft prompt + template + answer
        assert mask[b].sum() == n and mask[b, -n:].all()  # left padded
        assert labels[b, -len(answer):].tolist() == answer
        assert (labels[b, : -len(answer)] == IGNORE).all()
        bos = llm.get_input_embeddings().weight[tokenizer.bos_token_id]
        assert torch.equal(inputs[b, -n], bos)
        assert torch.allclose(inputs[b, -n + 1 : -n + 5], stage1.instructor.proj(query_out[b]))


def test_learned_prefix_goes_before_the_soft_prompt_and_trains_with_the_projection():
    llm, tokenizer = tiny_llm()
    torch.manual_seed(0)
    stage1 = Stage1(Stage1Config(qformer=tiny_qformer_config(), instructor=InstructorConfig(hidden=16, llm_dim=16, n_prefix=3)))
    stage1.set_phase("projection")
    query_out = stage1.qformer(torch.randn(2, 10, 12))
    batch = stage1.instructor.build_inputs(query_out, [0, 0], tokenizer, llm, targets=TARGETS)
    answer = tokenizer(TARGETS[0], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    _, after = stage1.instructor.prompt_ids(tokenizer, TEMPLATES[0])
    n = 1 + 3 + 4 + len(after) + len(answer)  # BOS + prefix + soft prompt + template + answer
    assert batch["attention_mask"][0].sum() == n and batch["labels"][0, -len(answer):].tolist() == answer
    assert torch.allclose(batch["inputs_embeds"][0, -n + 1 : -n + 4], stage1.instructor.prefix)
    assert torch.allclose(batch["inputs_embeds"][0, -n + 4 : -n + 8], stage1.instructor.proj(query_out[0]))
    stage1.instructor.loss(query_out, [0, 1], TARGETS, tokenizer, llm).backward()
    assert stage1.instructor.prefix.grad is not None and stage1.instructor.prefix.grad.abs().sum() > 0


def test_emphasis_weighs_the_tokens_of_its_spans_in_the_loss():
    llm, tokenizer = tiny_llm()
    stage1 = tiny_stage1()
    query_out = stage1.qformer(torch.randn(2, 10, 12))
    start = TARGETS[1].index("anger")
    spans = [[], [(start, start + len("anger"))]]
    batch = stage1.instructor.build_inputs(query_out, [0, 1], tokenizer, llm, TARGETS, spans, 4.0)
    weights, labels = batch["loss_weights"], batch["labels"]
    assert ((weights > 0) == (labels != IGNORE)).all()  # the prompt never counts
    heavy = labels[1][weights[1] == 4.0].tolist()
    assert tokenizer.decode(heavy) == "anger" and (weights[0][labels[0] != IGNORE] == 1.0).all()
    with torch.no_grad():
        plain = stage1.instructor.loss(query_out, [0, 1], TARGETS, tokenizer, llm)
        same = stage1.instructor.loss(query_out, [0, 1], TARGETS, tokenizer, llm, spans, 1.0)
        weighted = stage1.instructor.loss(query_out, [0, 1], TARGETS, tokenizer, llm, spans, 4.0)
        inputs = {k: v for k, v in batch.items() if k in ("inputs_embeds", "attention_mask")}
        full = llm(**inputs, labels=labels)  # the LM's own loss: every position through the head
        target, w = labels[:, 1:], weights[:, 1:]
        ce = torch.nn.functional.cross_entropy(full.logits[:, :-1].transpose(1, 2), target.clamp_min(0), reduction="none")
    assert torch.allclose(plain, full.loss, atol=1e-5) and torch.allclose(plain, same, atol=1e-6)
    assert torch.allclose(weighted, (ce * w).sum() / w.sum(), atol=1e-5) and not torch.allclose(weighted, plain)
    with pytest.raises(ValueError, match="emphasis"):
        stage1.instructor.build_inputs(query_out, [0, 1], tokenizer, llm, TARGETS, [[]], 4.0)


def test_chat_template_puts_the_soft_prompt_in_the_user_turn():
    template = "{% for m in messages %}<s> {{ m['role'] }} : {{ m['content'] }} </s> {% endfor %}{% if add_generation_prompt %}<s> assistant : {% endif %}"
    llm, tokenizer = tiny_llm(chat_template=template)
    instructor = Instructor(InstructorConfig(hidden=16, llm_dim=16, use_chat_template=True))
    before, after = instructor.prompt_ids(tokenizer, TEMPLATES[0])
    assert tokenizer.decode(before) == "<s> user :"
    assert tokenizer.decode(after).startswith("Analyze") and tokenizer.decode(after).endswith("<s> assistant :")
    plain = Instructor(InstructorConfig(hidden=16, llm_dim=16))  # the shipped layout: no chat template
    assert plain.prompt_ids(tokenizer, TEMPLATES[0])[0] == [tokenizer.bos_token_id]


def test_projection_phase_trains_the_projection_only():
    llm, tokenizer = tiny_llm()
    stage1 = tiny_stage1()
    stage1.set_phase("projection")
    assert not stage1.qformer.training and stage1.instructor.training
    loss = stage1.instructor.loss(stage1.qformer(torch.randn(2, 10, 12)), [0, 1], TARGETS, tokenizer, llm)
    loss.backward()
    assert stage1.instructor.proj.weight.grad is not None and stage1.instructor.proj.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in stage1.qformer.parameters())
    assert all(p.grad is None for p in llm.parameters())
    stage1.set_phase("contrastive")
    assert stage1.qformer.queries.requires_grad and not stage1.instructor.proj.weight.requires_grad


def test_projection_training_lowers_the_loss():
    llm, tokenizer = tiny_llm()
    stage1 = tiny_stage1()
    stage1.set_phase("projection")
    with torch.no_grad():
        query_out = stage1.qformer(torch.randn(2, 10, 12))
    optimizer = torch.optim.Adam(stage1.instructor.parameters(), lr=0.1)
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        loss = stage1.instructor.loss(query_out, [0, 0], TARGETS, tokenizer, llm)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0]


def test_generate_and_describe_return_text():
    llm, tokenizer = tiny_llm()
    stage1 = tiny_stage1()
    stage1.set_phase("frozen")
    texts = stage1.instructor.generate(stage1.qformer(torch.randn(2, 10, 12)), tokenizer, llm, [0, 5], max_new_tokens=5)
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)
    assert any(t for t in texts)  # a random tiny LLM may emit EOS at once, but not for both
    assert isinstance(stage1.describe(torch.randn(1, 10, 12), llm, tokenizer, template=2), str)
    with pytest.raises(ValueError, match=r"\(1, T, D\)"):
        stage1.describe(torch.randn(2, 10, 12), llm, tokenizer)


def test_vote_keeps_the_emotion_most_sentences_name():
    assert vote(["A man is angry.", "A man is sad.", "He is sad and slow.", "A furious man."]) == "A man is angry."  # 2-2: the first
    assert vote(["A man is angry.", "A man is sad.", "He is dejected.", "She is sad.", "A furious man."]) == "A man is sad."
    assert vote(["He said so.", "A woman is happy.", "Hmm."]) == "A woman is happy."  # an empty answer is outvoted
    assert vote(["He said so.", "Hmm."]) == "He said so."  # nothing named: the first (greedy) sentence
    assert vote(["He is displeased.", "He is disgusted.", "He is angry."]) == "He is displeased."  # one word, two emotions


def test_generate_with_samples_votes_per_item(monkeypatch):
    """Each item votes among its own greedy sentence (row 0) and its sampled ones."""
    llm, tokenizer = tiny_llm()
    stage1 = tiny_stage1()
    stage1.set_phase("frozen")
    query = stage1.qformer(torch.randn(2, 10, 12))
    answers = iter([["He is calm.", "He is sad.", "He is sad.", "A happy man."], ["Hmm.", "She is happy.", "She is angry.", "She is happy."],
                    ["He is calm."], ["Hmm."]])
    calls = []

    def fake_decode(llm, tokenizer, prompt, samples, max_new_tokens):
        calls.append(samples)
        return next(answers)

    monkeypatch.setattr("backend.stage1.instructor.decode", fake_decode)
    assert stage1.instructor.generate(query, tokenizer, llm, samples=3) == ["He is sad.", "She is happy."]
    assert stage1.instructor.generate(query, tokenizer, llm) == ["He is calm.", "Hmm."] and calls == [3, 3, 0, 0]  # greedy only


def test_generate_with_samples_is_seeded_and_leaves_the_global_rng_alone():
    llm, tokenizer = tiny_llm()
    stage1 = tiny_stage1()
    stage1.set_phase("frozen")
    features = torch.randn(1, 10, 12)
    state = torch.get_rng_state()
    first = stage1.describe(features, llm, tokenizer, max_new_tokens=5, samples=4, seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    torch.rand(5)  # other draws in between change nothing
    assert stage1.describe(features, llm, tokenizer, max_new_tokens=5, samples=4, seed=3) == first
    assert isinstance(first, str)


def test_the_shared_prompt_cache_decodes_the_greedy_sentence_of_a_plain_generate():
    """Row 0 of ``decode`` (prompt read once, rows leaving at their sentence end) is transformers' greedy
    decoding with the same penalties, cut after its first sentence."""
    llm, tokenizer = tiny_llm()
    stage1 = tiny_stage1()
    stage1.set_phase("frozen")
    for seed in range(4):
        torch.manual_seed(seed)
        batch = stage1.instructor.build_inputs(stage1.qformer(torch.randn(1, 10, 12)), seed % 3, tokenizer, llm)
        sentences = decode(llm, tokenizer, batch["inputs_embeds"], 4, 20)
        full = llm.generate(**batch, max_new_tokens=20, no_repeat_ngram_size=3, repetition_penalty=1.2, do_sample=False,
                            pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
        text = " ".join(tokenizer.batch_decode(full, skip_special_tokens=True)[0].split())
        assert len(sentences) == 5 and sentences[0] == first_sentence(text)
        assert decode(llm, tokenizer, batch["inputs_embeds"], 0, 20) == sentences[:1]
        assert all(first_sentence(s) == s for s in sentences)


def test_projection_must_match_the_llm():
    llm, tokenizer = tiny_llm()
    instructor = Instructor(InstructorConfig(hidden=16, llm_dim=32))
    with pytest.raises(ValueError, match="32-d"):
        instructor.build_inputs(torch.randn(1, 4, 16), 0, tokenizer, llm)
    with pytest.raises(ValueError, match="template id"):
        Instructor(InstructorConfig(hidden=16, llm_dim=16)).build_inputs(torch.randn(1, 4, 16), 10, tokenizer, llm)


def test_first_sentence():
    assert first_sentence("  Eyes wide,  brows raised. Then   more text.") == "Eyes wide, brows raised."
    assert first_sentence("no end mark") == "no end mark"
    assert first_sentence("Version 2.5 of a smile! Rest") == "Version 2.5 of a smile!"


# ------------------------------------------------------------------ checkpoint


def test_stage1_checkpoint_round_trip(tmp_path):
    stage1 = tiny_stage1()
    stage1.config.speech_encoder = "hubert"
    path = tmp_path / "stage1.safetensors"
    save_stage1(path, stage1, extra={"epochs": 3})
    loaded, extra = load_stage1(path)
    assert extra == {"epochs": 3}
    with pytest.raises(CheckpointError, match="never trained"):
        load_stage1(path, require_trained=True)
    assert loaded.config == stage1.config
    assert isinstance(loaded.config.qformer, QFormerConfig)
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    stage1.eval()
    feats = torch.randn(1, 9, 12)
    with torch.no_grad():
        assert torch.equal(loaded.qformer(feats), stage1.qformer(feats))
    llm, tokenizer = tiny_llm()
    assert loaded.describe(feats, llm, tokenizer) == stage1.describe(feats, llm, tokenizer)


def test_stage1_checkpoint_kind_is_checked(tmp_path):
    qformer = QFormer(tiny_qformer_config())
    save_checkpoint(tmp_path / "q.safetensors", qformer, qformer.config, kind="qformer")
    with pytest.raises(CheckpointError, match="expected 'stage1'"):
        load_stage1(tmp_path / "q.safetensors")
    with pytest.raises(ValueError, match="must equal"):
        Stage1Config(qformer=tiny_qformer_config(), instructor=InstructorConfig(hidden=99))

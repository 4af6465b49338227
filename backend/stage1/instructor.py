"""Stage 1: Q-Former audio embedding -> soft prompt -> frozen LLM -> instruction (Sec. III-C).

The LLM input is ``[BOS] + (learned prefix) + audio soft prompt + instruction template`` (inside
the user turn of the chat template when the tokenizer has one). The soft
prompt is a ``Linear`` from the Q-Former's hidden size into the LLM's input
embedding space, reached only through Hugging Face's generic accessors
(``get_input_embeddings``, ``generate(inputs_embeds=...)``) so any causal LM
plugs in. Training follows the paper's two phases:

1. ``"contrastive"``: the Q-Former learns eq. 6; nothing else trains.
2. ``"projection"``: the Q-Former is frozen and only the projection (with the
   learned prefix, when there is one) learns the next-token loss on the target instruction (labels -100 over the prompt and
   the soft-prompt span). The LLM never trains.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F
from transformers import (LogitsProcessorList, NoRepeatNGramLogitsProcessor, RepetitionPenaltyLogitsProcessor,
                          TopKLogitsWarper, TopPLogitsWarper)

from .templates import TEMPLATES
from ..language.llm import cache_argument, cache_of
from .vote import vote
from ..checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .qformer import QFormer, QFormerConfig

AUDIO_SLOT = "<|avitalk_audio|>"  # where the soft prompt goes in the prompt text
IGNORE = -100
PHASES = ("contrastive", "projection", "frozen")
SAMPLE_TOP_P = 0.9  # nucleus sampling for the extra sentences of ``generate(samples=...)``


@dataclass
class InstructorConfig:
    hidden: int = 256  # Q-Former hidden size
    llm_dim: int = 576  # llm.get_input_embeddings().embedding_dim (SmolLM2-135M: 576)
    use_chat_template: bool = False  # BOS + soft prompt + template + answer: ~45 tokens instead of ~70
    max_new_tokens: int = 48
    n_prefix: int = 4  # learned prompt vectors before the audio soft prompt (trained with the projection)


def first_sentence(text: str) -> str:
    """Whitespace collapsed, cut after the first sentence end."""
    text = " ".join(text.split())
    end = re.search(r"[.!?](\s|$)", text)
    return text[: end.start() + 1] if end else text


class Instructor(nn.Module):
    """The trainable projection and the prompt layout around it."""

    def __init__(self, config: InstructorConfig):
        super().__init__()
        self.config = config
        self.proj = nn.Linear(config.hidden, config.llm_dim)
        self.prefix = nn.Parameter(torch.randn(config.n_prefix, config.llm_dim) * 0.02) if config.n_prefix else None

    def prompt_ids(self, tokenizer, template: str) -> tuple[list[int], list[int]]:
        """Token ids before and after the soft prompt for one template."""
        if self.config.use_chat_template and getattr(tokenizer, "chat_template", None):
            messages = [{"role": "user", "content": f"{AUDIO_SLOT} {template}"}]
            text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            before, after = text.split(AUDIO_SLOT)
            encode = lambda s: tokenizer(s, add_special_tokens=False)["input_ids"]  # noqa: E731
            return encode(before), encode(after)
        prefix = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
        return prefix, tokenizer(" " + template + "\n", add_special_tokens=False)["input_ids"]

    def build_inputs(self, query_out: torch.Tensor, template_ids, tokenizer, llm, targets: list[str] | None = None,
                     emphasis: list[list[tuple[int, int]]] | None = None, emphasis_weight: float = 1.0) -> dict:
        """``inputs_embeds`` (B, L, llm_dim), ``attention_mask`` (B, L) and, with targets, ``labels`` (B, L).

        Left-padded so that generation continues right after each prompt. With targets the batch
        also holds ``loss_weights`` (B, L): 0 over the prompt, 1 over the answer, and
        ``emphasis_weight`` on the tokens of the ``emphasis`` character spans (per target).
        """
        embed = llm.get_input_embeddings()
        if embed.embedding_dim != self.config.llm_dim:
            raise ValueError(
                f"this stage-1 model projects into {self.config.llm_dim}-d embeddings, "
                f"the LLM uses {embed.embedding_dim}; train stage 1 for this LLM"
            )
        B = query_out.shape[0]
        if isinstance(template_ids, int):
            template_ids = [template_ids] * B
        if len(template_ids) != B or (targets is not None and len(targets) != B):
            raise ValueError("one template id (and one target) per batch item")
        if emphasis is not None and (targets is None or len(emphasis) != B):
            raise ValueError("emphasis needs one list of spans per target")
        for t in template_ids:
            if not 0 <= t < len(TEMPLATES):
                raise ValueError(f"template id must be in [0, {len(TEMPLATES) - 1}], got {t}")
        device = embed.weight.device
        soft = self.proj(query_out.to(self.proj.weight.dtype))  # (B, Q, E)
        if self.prefix is not None:
            soft = torch.cat([self.prefix.expand(B, -1, -1).to(soft.dtype), soft], dim=1)  # (B, P + Q, E)
        soft = soft.to(embed.weight.dtype)
        rows, labels, weights = [], [], []
        for b in range(B):
            before, after = self.prompt_ids(tokenizer, TEMPLATES[template_ids[b]])
            answer, weight = [], []
            if targets is not None:
                answer, weight = self._answer(tokenizer, targets[b].strip(), emphasis[b] if emphasis else [], emphasis_weight)
            ids = lambda x: torch.tensor(x, dtype=torch.long, device=device)  # noqa: E731
            rows.append(torch.cat([embed(ids(before)), soft[b], embed(ids(after + answer))]))  # (L_b, E)
            n_prompt = len(before) + soft.shape[1] + len(after)
            labels.append([IGNORE] * n_prompt + answer)
            weights.append([0.0] * n_prompt + weight)
        length = max(r.shape[0] for r in rows)
        inputs = soft.new_zeros(B, length, soft.shape[-1])  # (B, L, E)
        mask = torch.zeros(B, length, dtype=torch.long, device=device)  # (B, L)
        label_ids = torch.full((B, length), IGNORE, dtype=torch.long, device=device)  # (B, L)
        loss_weights = torch.zeros(B, length, device=device)  # (B, L)
        for b, row in enumerate(rows):
            inputs[b, length - row.shape[0] :] = row
            mask[b, length - row.shape[0] :] = 1
            label_ids[b, length - row.shape[0] :] = torch.tensor(labels[b], dtype=torch.long, device=device)
            loss_weights[b, length - row.shape[0] :] = torch.tensor(weights[b], device=device)
        out = {"inputs_embeds": inputs, "attention_mask": mask}
        if targets is not None:
            out["labels"] = label_ids
            out["loss_weights"] = loss_weights
        return out

    @staticmethod
    def _answer(tokenizer, target: str, spans: list[tuple[int, int]], emphasis_weight: float) -> tuple[list[int], list[float]]:
        """Token ids of ``target`` + EOS, and each token's loss weight (``emphasis_weight`` where it overlaps a span)."""
        if not spans:
            answer = tokenizer(target, add_special_tokens=False)["input_ids"]
            weight = [1.0] * len(answer)
        else:
            enc = tokenizer(target, add_special_tokens=False, return_offsets_mapping=True)
            answer = enc["input_ids"]
            weight = [emphasis_weight if any(s < e0 and e > s0 for s0, e0 in spans) else 1.0 for s, e in enc["offset_mapping"]]
        if tokenizer.eos_token_id is not None:
            answer, weight = answer + [tokenizer.eos_token_id], weight + [1.0]
        return answer, weight

    def loss(self, query_out: torch.Tensor, template_ids, targets: list[str], tokenizer, llm,
             emphasis: list[list[tuple[int, int]]] | None = None, emphasis_weight: float = 1.0) -> torch.Tensor:
        """Next-token cross entropy on the target instructions only, a weighted mean (see ``build_inputs``).
        The LM head runs on the answer positions only (left padding puts them last)."""
        batch = self.build_inputs(query_out, template_ids, tokenizer, llm, targets, emphasis, emphasis_weight)
        labels, weights = batch.pop("labels"), batch.pop("loss_weights")
        n = int((labels != IGNORE).sum(dim=1).max())                              # longest answer
        if n == 0:
            raise ValueError("the targets have no tokens to learn")
        logits = llm(**batch, logits_to_keep=n + 1).logits[:, -(n + 1) : -1].float()  # (B, n, V) predicts the last n tokens
        target, w = labels[:, -n:], weights[:, -n:]                              # (B, n)
        ce = F.cross_entropy(logits.transpose(1, 2), target.clamp_min(0), reduction="none")  # (B, n)
        return (ce * w).sum() / w.sum().clamp_min(1e-6)

    @torch.no_grad()
    def generate(self, query_out: torch.Tensor, tokenizer, llm, template_ids=0, max_new_tokens: int | None = None,
                 samples: int = 0, seed: int = 0) -> list[str]:
        """One sentence per batch item. Greedy decoding from the soft prompt; repeated trigrams are
        banned: a small LLM steered by a soft prompt otherwise loops ("a woman who is a woman who ...").

        With ``samples`` > 0 the LLM also writes that many sampled sentences (nucleus sampling, seeded
        by ``seed``), and the greedy sentence stands only when it names the emotion most of them name
        (``vote``): a self-consistency check against the greedy sentence's slips and empty answers.
        The prompt is read once per item; the greedy row and the samples decode as one batch from that
        shared key/value cache (``decode``)."""
        B = query_out.shape[0]
        if isinstance(template_ids, int):
            template_ids = [template_ids] * B
        if len(template_ids) != B:
            raise ValueError("one template id per batch item")
        out = []
        for b in range(B):
            batch = self.build_inputs(query_out[b : b + 1], template_ids[b], tokenizer, llm)
            devices = [query_out.device] if query_out.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(seed)
                sentences = decode(llm, tokenizer, batch["inputs_embeds"], samples,
                                   max_new_tokens or self.config.max_new_tokens)
            out.append(vote(sentences) if samples > 0 else sentences[0])
        return out

    @torch.no_grad()
    def continue_from(self, query_out: torch.Tensor, tokenizer, llm, start: str, template_id: int = 0,
                      max_new_tokens: int | None = None) -> str:
        """(1, Q, H) -> the greedy rest of a sentence whose first words, ``start``, are given: the prompt
        as in ``generate``, then ``start``'s tokens as if the LLM had written them. Returns the
        continuation alone (its first sentence)."""
        if query_out.shape[0] != 1:
            raise ValueError("continue_from reads one clip at a time")
        batch = self.build_inputs(query_out, template_id, tokenizer, llm)
        embed = llm.get_input_embeddings()
        ids = torch.tensor(tokenizer(start.strip(), add_special_tokens=False)["input_ids"], dtype=torch.long,
                           device=embed.weight.device)
        prompt = torch.cat([batch["inputs_embeds"], embed(ids)[None].to(batch["inputs_embeds"].dtype)], dim=1)  # (1, L + S, E)
        return decode(llm, tokenizer, prompt, 0, max_new_tokens or self.config.max_new_tokens)[0]


def decode(llm, tokenizer, prompt: torch.Tensor, samples: int, max_new_tokens: int) -> list[str]:
    """(1, L, E) prompt embeddings -> ``1 + samples`` first sentences: the greedy one, then the sampled ones.

    The prompt runs through the LLM once; its key/value cache is copied to every row. Each step applies
    the repetition penalty (1.2) and the trigram ban to every row, then row 0 takes the most likely
    token and the others draw from the top 50 / top-p ``SAMPLE_TOP_P`` tokens. A row leaves the batch
    at its first sentence end (a sentence mark followed by a space), at EOS, or after ``max_new_tokens``.
    """
    processors = LogitsProcessorList([RepetitionPenaltyLogitsProcessor(1.2), NoRepeatNGramLogitsProcessor(3)])
    warpers = LogitsProcessorList([TopKLogitsWarper(50), TopPLogitsWarper(SAMPLE_TOP_P)])
    out = llm(inputs_embeds=prompt, use_cache=True)
    cache, logits = cache_of(out), out.logits[:, -1].float()  # (1, V)
    pass_cache = {cache_argument(llm): cache}
    rows = 1 + samples
    if samples:
        cache.batch_repeat_interleave(rows)
        logits = logits.repeat(rows, 1)  # (R, V)
    device = prompt.device
    ids = torch.empty(rows, 0, dtype=torch.long, device=device)  # (R, n) tokens written so far
    alive = torch.arange(rows, device=device)  # which rows are still in the batch
    done: dict[int, list[int]] = {}
    for step in range(max_new_tokens):
        scores = processors(ids[alive], logits)  # (A, V)
        token = scores.argmax(dim=-1)  # (A,)
        sampled = alive != 0
        if sampled.any():
            probs = warpers(ids[alive][sampled], scores[sampled]).softmax(dim=-1)
            token[sampled] = torch.multinomial(probs, 1).squeeze(1)
        new = torch.full((rows, 1), tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0,
                         dtype=torch.long, device=device)
        new[alive, 0] = token
        ids = torch.cat([ids, new], dim=1)  # (R, n + 1)
        keep = []
        for i, r in enumerate(alive.tolist()):
            text = tokenizer.decode(ids[r], skip_special_tokens=True)
            if int(token[i]) == tokenizer.eos_token_id or re.search(r"[.!?]\s", text) or step + 1 == max_new_tokens:
                done[r] = ids[r].tolist()
            else:
                keep.append(i)
        if not keep:
            break
        if len(keep) < len(alive):
            index = torch.tensor(keep, device=device)
            cache.batch_select_indices(index)
            alive, token = alive[index], token[index]
        logits = llm(input_ids=token[:, None], **pass_cache, use_cache=True).logits[:, -1].float()  # (A, V)
    return [first_sentence(tokenizer.decode(done[r], skip_special_tokens=True)) for r in range(rows)]


@dataclass
class Stage1Config:
    qformer: QFormerConfig = field(default_factory=QFormerConfig)
    instructor: InstructorConfig = field(default_factory=InstructorConfig)
    speech_encoder: str = "whisper-tiny.en"  # the features it was trained on
    feature_fps: float = 25.0  # frame rate of those features (speech.features_at)
    llm: str = "smollm2-135m"

    def __post_init__(self):
        if isinstance(self.qformer, dict):
            self.qformer = QFormerConfig(**self.qformer)
        if isinstance(self.instructor, dict):
            self.instructor = InstructorConfig(**self.instructor)
        if self.instructor.hidden != self.qformer.hidden:
            raise ValueError(f"instructor.hidden ({self.instructor.hidden}) must equal qformer.hidden ({self.qformer.hidden})")


class Stage1(nn.Module):
    """Q-Former + projection: speech features -> instruction sentence with a frozen LLM."""

    def __init__(self, config: Stage1Config):
        super().__init__()
        self.config = config
        self.qformer = QFormer(config.qformer)
        self.instructor = Instructor(config.instructor)

    def set_phase(self, phase: str) -> None:
        """The one place that decides what trains: see the module docstring."""
        if phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
        self.train(phase != "frozen")
        self.qformer.requires_grad_(phase == "contrastive")
        self.qformer.train(phase == "contrastive")
        self.instructor.requires_grad_(phase == "projection")
        self.instructor.train(phase == "projection")

    @torch.no_grad()
    def describe(self, features: torch.Tensor, llm, tokenizer, template: int = 0, max_new_tokens: int | None = None,
                 words: torch.Tensor | None = None, samples: int = 0, seed: int = 0) -> str:
        """(1, T, D) speech features (and (1, words_dim) words heard, when the Q-Former reads them) -> one
        instruction sentence (``samples``, ``seed``: see ``Instructor.generate``)."""
        if features.ndim != 3 or features.shape[0] != 1:
            raise ValueError(f"describe takes features of shape (1, T, D), got {tuple(features.shape)}")
        query_out = self.qformer(features, words=words)  # (1, Q, H)
        return self.instructor.generate(query_out, tokenizer, llm, template, max_new_tokens, samples, seed)[0]

    @torch.no_grad()
    def continue_sentence(self, features: torch.Tensor, llm, tokenizer, start: str, template: int = 0,
                          max_new_tokens: int | None = None, words: torch.Tensor | None = None) -> str:
        """(1, T, D) speech features -> the LLM's rest of a sentence that begins with ``start``
        (``Instructor.continue_from``)."""
        if features.ndim != 3 or features.shape[0] != 1:
            raise ValueError(f"continue_sentence takes features of shape (1, T, D), got {tuple(features.shape)}")
        query_out = self.qformer(features, words=words)  # (1, Q, H)
        return self.instructor.continue_from(query_out, tokenizer, llm, start, template, max_new_tokens)


def save_stage1(path, stage1: Stage1, extra: dict | None = None) -> None:
    save_checkpoint(path, stage1, stage1.config, kind="stage1", extra=extra)


def load_stage1(path, map_location="cpu", require_trained: bool = False) -> tuple[Stage1, dict]:
    """Rebuild a Stage1 from its checkpoint, frozen and in eval mode; returns (model, extra).
    With require_trained, a checkpoint not marked trained raises CheckpointError."""
    stage1, extra = load_checkpoint(path, Stage1, Stage1Config, kind="stage1", map_location=map_location)
    if require_trained and not extra.get("trained", False):
        raise CheckpointError(f"{path}: the stage 1 weights were never trained (extra={extra})")
    stage1.set_phase("frozen")
    return stage1, extra

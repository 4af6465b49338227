"""Options shared by every phase, and the context that loads data and frozen models once."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .cache import (
    assemble, build_speech_cache, build_text_cache, lm_text_cache_path, phrasings, speech_cache_path, split_data, text_cache_path,
    text_key,
)
from ..device import resolve_device
from .data import TrainData, load_records, words_of

log = logging.getLogger(__name__)

PHASES = ("stage2-talking", "stage2-instruction", "stage1-qformer", "stage1-projection")


@dataclass
class PhaseDefaults:
    steps: int
    batch_size: int
    lr: float


# The shipped stack's schedule (its time per phase: docs/model_card.md). With --budget-minutes, the
# steps scale to the budget and each phase also stops at its time share.
DEFAULTS = {
    "stage2-talking": PhaseDefaults(steps=3500, batch_size=16, lr=5e-4),
    "stage2-instruction": PhaseDefaults(steps=3000, batch_size=64, lr=5e-4),
    "stage1-qformer": PhaseDefaults(steps=3000, batch_size=32, lr=3e-4),
    "stage1-projection": PhaseDefaults(steps=1400, batch_size=8, lr=3e-3),
}
DEFAULT_BUDGET_MINUTES = 55.0  # training time the default steps take (feature cache not included)
TIME_SLACK = 1.2  # a phase may run this much past its share before it stops (its state is kept)
TIME_SHARE = {"stage2-talking": 0.3, "stage2-instruction": 0.06, "stage1-qformer": 0.14, "stage1-projection": 0.5}


@dataclass
class TrainOptions:
    corpus: Path
    run: Path = Path("runs/avitalk")
    out: Path = Path(__file__).resolve().parent.parent / "weights"
    cache_dir: Path | None = None             # default: <corpus>/cache
    device: str = "auto"
    steps: int | None = None                   # None: the phase default (scaled by the budget when one is set)
    batch_size: int | None = None
    lr: float | None = None
    budget_minutes: float | None = None        # opt-in: scales the default steps; each phase stops at its share
    seed: int = 0
    speech_encoder: str = "whisper-tiny.en"
    speech_path: Path | None = None
    llm: Path | None = None                    # None: the shipped SmolLM2 GGUF
    stage1_config: dict = field(default_factory=dict)  # overrides, e.g. {"qformer": {"n_layers": 1}}
    stage2_config: dict = field(default_factory=dict)  # overrides, e.g. {"generator": {"layers": 2}}
    n_augment: int = 1                         # augmented copies of each phrasing (embedded in the cache)
    n_paraphrase: int = 6                      # free wordings of the emotion per clip (corpus.paraphrases)
    val_clips: int = 16

    def phase(self, name: str) -> tuple[int, int, float, float | None]:
        """(steps, batch size, lr, time limit in seconds) for a phase."""
        d = DEFAULTS[name]
        if self.budget_minutes is None:
            return self.steps or d.steps, self.batch_size or d.batch_size, self.lr or d.lr, None
        steps = self.steps if self.steps is not None else max(1, round(d.steps * self.budget_minutes / DEFAULT_BUDGET_MINUTES))
        return steps, self.batch_size or d.batch_size, self.lr or d.lr, 60.0 * self.budget_minutes * TIME_SHARE[name] * TIME_SLACK


def build_config(config_cls, *layers: dict):
    """``config_cls`` from its defaults with each layer of (nested) overrides applied in turn;
    a name the config does not have is an error (a typo in ``--stage2-config``)."""
    return config_cls(**merged(dataclasses.asdict(config_cls()), *layers))


def merged(base: dict, *layers: dict, where: str = "") -> dict:
    out = dict(base)
    for layer in layers:
        for key, value in layer.items():
            if key not in out:
                raise ValueError(f"unknown config field '{where}{key}'; known: {sorted(out)}")
            if isinstance(out[key], dict):
                if not isinstance(value, dict):
                    raise ValueError(f"config field '{where}{key}' takes a JSON object, got {value!r}")
                value = merged(out[key], value, where=f"{where}{key}.")
            out[key] = value
    return out


class Context:
    """Loads the corpus with its cached features once, and the frozen LLM on first use."""

    def __init__(self, options: TrainOptions):
        self.options = options
        self.device = resolve_device(options.device)
        self.run = Path(options.run)
        self.run.mkdir(parents=True, exist_ok=True)
        self._data: tuple[TrainData, TrainData | None] | None = None
        self._llm = None

    @property
    def cache_dir(self) -> Path:
        return Path(self.options.cache_dir) if self.options.cache_dir else Path(self.options.corpus) / "cache"

    def data(self) -> tuple[TrainData, TrainData | None]:
        """(train, val or None): clips with speech features, motion and instruction embeddings."""
        if self._data is None:
            self._data = self._load_data()
        return self._data

    def _load_data(self):
        opts = self.options
        records = [r for r in load_records(opts.corpus) if r.split in ("train", "val")]
        speech = build_speech_cache(
            records, speech_cache_path(self.cache_dir, opts.speech_encoder), load=self._speech_encoder, device=str(self.device)
        )
        reads_words = bool(opts.stage1_config.get("qformer", {}).get("words_dim"))  # stage 1 asked to read the transcripts
        words = {r.id: words_of(r) if reads_words else None for r in records}
        sentences = [s for r in records for s in phrasings(r, opts.n_augment, opts.n_paraphrase)]
        sentences += sorted({w for w in words.values() if w})
        text = build_text_cache(sentences, text_cache_path(self.cache_dir), load=self._text_encoder)
        clips = assemble(records, speech, text, opts.n_augment, opts.n_paraphrase)
        for c in clips:
            c.words_emb = text[text_key(words[c.record.id])].float() if words[c.record.id] else None  # (384,)
        train, val = split_data(clips, "train"), split_data(clips, "val")
        if train is None:
            raise ValueError(f"{opts.corpus}: no clips in the train split")
        if val is not None and len(val) > opts.val_clips:
            val.clips = val.clips[: opts.val_clips]
        log.info("train clips: %d, val clips: %d", len(train), 0 if val is None else len(val))
        return train, val

    def lm_text(self) -> int:
        """Give every loaded clip its readings by the run's LLM (``Clip.lm_emb``), cached beside MiniLM's;
        returns their width."""
        train, val = self.data()
        clips = train.clips + (val.clips if val is not None else [])
        if any(c.lm_emb is None for c in clips):
            emb = build_text_cache([t for c in clips for t in c.texts], lm_text_cache_path(self.cache_dir, self.llm_name),
                                   load=self._lm_text_encoder, batch_size=32, name=self.llm_name)
            for c in clips:
                c.lm_emb = torch.stack([emb[text_key(t)] for t in c.texts]).float()
        return int(clips[0].lm_emb.shape[-1])

    def _lm_text_encoder(self):
        from ..language.text import load_lm_text_encoder

        return load_lm_text_encoder(self.llm()).to(self.device)  # the run's LLM, the one stage 1 speaks through

    def _speech_encoder(self):
        from ..speech import load_encoder

        return load_encoder(self.options.speech_encoder, self.options.speech_path)

    def _text_encoder(self):
        from ..language.text import load_text_encoder

        return load_text_encoder().to(self.device)

    def llm(self):
        """The frozen (model, tokenizer) on the training device."""
        if self._llm is None:
            from ..language.llm import load_llm

            model, tokenizer = load_llm(self.options.llm)
            self._llm = (model.to(self.device), tokenizer)
        return self._llm

    @property
    def llm_name(self) -> str:
        from ..language.llm import DEFAULT_NAME

        return DEFAULT_NAME if self.options.llm is None else Path(self.options.llm).name

    def phase_dir(self, name: str) -> Path:
        return self.run / name

    def model_path(self, name: str) -> Path:
        """Where a finished phase leaves its model for the next phase."""
        return self.phase_dir(name) / "model.safetensors"

"""The affect reader: how a line is spoken, from speech, prosodic cues and words (small and fast).

Inputs of one clip:

- the speech features (Whisper tiny.en encoder, (T, 384)) pooled to their mean and standard deviation;
- the prosodic cues (``cues.py``), standardised by the training set's statistics (stored buffers);
- the words of the line read by MiniLM: cosine similarity to each emotion's prototype
  phrases (``WORD_PROTOTYPES``, written here, none of them the corpus's sentences or a game line), plus a
  flag for whether there are words at all.

Outputs: probabilities of the eight emotions (``EMOTIONS``), vocal effort (0 hushed .. 2 shouted)
and the probability that the speaker is female. ``Affect.decide`` turns them into a ``Reading``:
the emotion when it is likely enough, the intensity from the effort, the speaker's sex when sure.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..checkpoint import load_checkpoint, save_checkpoint
from .cues import N_CUES

EMOTIONS = ("neutral", "happy", "angry", "sad", "surprised", "fear", "disgusted", "contempt")

# a few plain ways people say each feeling, for MiniLM to compare the words of a line with
WORD_PROTOTYPES: dict[str, tuple[str, ...]] = {
    "neutral": ("The meeting starts at nine tomorrow.", "Please put the file on my desk.", "The train leaves from platform two.",
                "I will call you later about the order.", "Okay, understood."),
    "happy": ("This is wonderful, I am so glad!", "We did it, what a great day!", "Hooray, we won!", "I love it, thank you so much!",
              "Ha ha, that is hilarious!", "Well done, that was perfect!"),
    "angry": ("I am sick of this, stop it now!", "You will pay for what you did!", "How dare you!", "Get out of here!",
              "I warned you, and now you are in trouble.", "Don't you ever do that again!"),
    "sad": ("Oh no, I failed again.", "I miss her so much.", "It is all over, we lost.", "What a shame, that went wrong.",
            "I feel so alone.", "Sorry, it did not work out."),
    "surprised": ("What? I can't believe it!", "Wow, really?", "Whoa, where did that come from?", "No way!",
                  "I did not expect that at all."),
    "fear": ("Help! Somebody help me!", "Watch out, it is coming!", "Get down, get down!", "Quick, run for your lives!",
             "I am scared, what was that noise?", "Oh no, we are in danger."),
    "disgusted": ("Eww, that is revolting.", "Yuck, it smells rotten.", "That is gross, get it away from me.",
                  "I feel sick just looking at it."),
    "contempt": ("You are pathetic.", "What an idiot.", "Is that the best you can do?", "You are a joke.",
                 "Loser.", "How boring, wake me up when it is over."),
}
N_WORDS = len(EMOTIONS) + 1  # similarity per emotion, and whether there were words


@dataclass
class AffectConfig:
    audio_dim: int = 384     # speech feature size (Whisper tiny.en)
    n_cues: int = N_CUES
    n_words: int = N_WORDS
    hidden: int = 96
    dropout: float = 0.3
    min_emotion_p: float = 0.45  # below this the emotion is uncertain: the sentence says what is certain instead
    sure_sex_p: float = 0.8      # the speaker is named a man or a woman only this sure, else "a person"


@dataclass
class Reading:
    """What the affect reader decided about one clip."""

    emotion: str | None            # None: uncertain
    probabilities: dict[str, float]
    effort: float                  # 0 hushed .. 2 shouted
    sex: str | None                # "male" | "female" | None (unsure)
    female_p: float
    cues: dict[str, float]

    @property
    def intensity(self) -> str:
        return "strong" if self.effort >= 1.4 else "moderate" if self.effort >= 0.7 else "slight"


class Affect(nn.Module):
    """(B, 2 * audio_dim) pooled speech, (B, n_cues) cues, (B, n_words) words -> emotion logits, effort, sex logit."""

    def __init__(self, config: AffectConfig):
        super().__init__()
        self.config = config
        c = config
        self.register_buffer("cue_mean", torch.zeros(c.n_cues))
        self.register_buffer("cue_std", torch.ones(c.n_cues))
        self.audio_in = nn.Sequential(nn.LayerNorm(2 * c.audio_dim), nn.Dropout(c.dropout), nn.Linear(2 * c.audio_dim, c.hidden))
        self.cues_in = nn.Linear(c.n_cues, c.hidden)
        self.words_in = nn.Linear(c.n_words, c.hidden)
        self.body = nn.Sequential(nn.GELU(), nn.Dropout(c.dropout), nn.Linear(c.hidden, c.hidden), nn.GELU())
        self.emotion = nn.Linear(c.hidden, len(EMOTIONS))
        self.effort = nn.Linear(c.hidden, 1)
        self.sex = nn.Linear(c.hidden, 1)

    def forward(self, pooled: torch.Tensor, cues: torch.Tensor, words: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cues = ((cues - self.cue_mean) / self.cue_std).clamp(-5, 5)  # (B, n_cues)
        h = self.audio_in(pooled) + self.cues_in(cues) + self.words_in(words)  # (B, H)
        h = self.body(h)
        return self.emotion(h), 2 * torch.sigmoid(self.effort(h)[:, 0]), self.sex(h)[:, 0]  # (B, 8), (B,), (B,)

    @torch.no_grad()
    def decide(self, pooled: torch.Tensor, cues: torch.Tensor, words: torch.Tensor, cue_values: dict[str, float] | None = None) -> Reading:
        """One clip's (1, ...) inputs -> a ``Reading``."""
        logits, effort, sex = self(pooled, cues, words)
        p = logits.float().softmax(dim=-1)[0]
        best = int(p.argmax())
        female = float(torch.sigmoid(sex.float())[0])
        sure = max(female, 1 - female) >= self.config.sure_sex_p
        return Reading(emotion=EMOTIONS[best] if float(p[best]) >= self.config.min_emotion_p else None,
                       probabilities={e: float(v) for e, v in zip(EMOTIONS, p)}, effort=float(effort[0]),
                       sex=("female" if female >= 0.5 else "male") if sure else None, female_p=female,
                       cues=dict(cue_values or {}))


def pool(features: torch.Tensor) -> torch.Tensor:
    """(B, T, D) speech features -> (B, 2D): mean and standard deviation over time."""
    std = features.std(dim=1, unbiased=False) if features.shape[1] > 1 else torch.zeros_like(features[:, 0])
    return torch.cat([features.mean(dim=1), std], dim=-1)


class WordReader:
    """MiniLM similarity of a line's words to each emotion's prototype phrases."""

    def __init__(self, text_encoder):
        self.encoder = text_encoder
        with torch.no_grad():
            self.prototypes = [nn.functional.normalize(text_encoder.encode(list(WORD_PROTOTYPES[e])).float().cpu(), dim=-1)
                               for e in EMOTIONS]  # per emotion (K_e, D)

    def __call__(self, words: list[str]) -> torch.Tensor:
        """(B,) texts ('' for none) -> (B, N_WORDS): max cosine similarity per emotion, and 1 where there were words."""
        return read_words(self.encoder, self.prototypes, words)


def read_words(text_encoder, prototypes, words: list[str]) -> torch.Tensor:
    out = torch.zeros(len(words), N_WORDS)
    said = [i for i, w in enumerate(words) if w.strip()]
    if said:
        with torch.no_grad():
            emb = nn.functional.normalize(text_encoder.encode([words[i] for i in said]).float().cpu(), dim=-1)  # (S, D)
        for e, proto in enumerate(prototypes):
            out[said, e] = (emb @ proto.T).max(dim=1).values
        out[said, -1] = 1.0
    return out


def save_affect(path, model: Affect, extra: dict | None = None) -> None:
    save_checkpoint(path, model, model.config, kind="affect", extra=extra)


def load_affect(path, map_location="cpu") -> tuple[Affect, dict]:
    model, extra = load_checkpoint(path, Affect, AffectConfig, kind="affect", map_location=map_location)
    model.requires_grad_(False)
    model.eval()
    return model, extra

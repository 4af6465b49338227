"""Speech for the corpus: espeak-ng synthesis with emotional prosody, and real recordings.

Synthetic speech: an English voice (accent x voice variant) speaks a sentence
with pitch, pitch range, speed, amplitude and word emphasis shaped by the
clip's emotion and intensity. Real speech: the Asterisk core prompts (Allison
Smith, en, CC-BY-SA-3.0; Carlo Flora, it, CC-BY-3.0) with their transcripts.
Everything comes out as 16 kHz mono float32.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from ..audio import load_audio
from ..errors import AviTalkError

EMOTIONS = ("neutral", "happy", "angry", "sad", "surprised", "fear", "disgusted", "contempt")
INTENSITIES = ("slight", "moderate", "strong")
INTENSITY_SCALE = {"slight": 0.4, "moderate": 0.7, "strong": 1.0}

ACCENTS = ("en-us", "en-gb", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-us-nyc")
MALE_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "Alex", "Andy", "david", "Gene", "john", "max", "paul", "quincy", "rob", "klatt2")
FEMALE_VARIANTS = ("f1", "f2", "f3", "f4", "f5", "Annie", "Alicia", "Andrea", "belinda", "linda", "steph", "anika", "aunty")
# voices kept out of training: the test split uses only these
HELDOUT_ACCENTS = ("en-gb-x-gbcwmd",)
HELDOUT_VARIANTS = ("m7", "quincy", "f5", "linda")


class SpeechError(AviTalkError):
    """Speech could not be synthesised or read."""


@dataclass(frozen=True)
class Voice:
    accent: str  # espeak-ng language voice, e.g. "en-gb-x-rp"
    variant: str  # espeak-ng variant, e.g. "f3"
    gender: str  # "male" | "female"

    @property
    def name(self) -> str:
        return f"{self.accent}+{self.variant}"

    @property
    def heldout(self) -> bool:
        return self.accent in HELDOUT_ACCENTS or self.variant in HELDOUT_VARIANTS


def voices() -> list[Voice]:
    """Every accent with every variant."""
    out = []
    for accent in ACCENTS:
        out += [Voice(accent, v, "male") for v in MALE_VARIANTS]
        out += [Voice(accent, v, "female") for v in FEMALE_VARIANTS]
    return out


@dataclass
class Prosody:
    pitch: int  # espeak -p, 0..99 (50 is the voice's normal)
    pitch_range: str  # SSML <prosody range>: x-low low medium high x-high
    speed: int  # espeak -s, words per minute
    amplitude: int  # espeak -a, 0..200
    word_gap: int  # espeak -g, pause between words in 10 ms units
    emphasis: int | None = None  # index of the word spoken with <emphasis>


# per emotion at full intensity: (pitch offset, range step -2..+2, speed factor, amplitude factor, emphasis probability)
_EMOTION_PROSODY = {
    "neutral": (0, 0, 1.00, 1.00, 0.1),
    "happy": (12, 1, 1.08, 1.10, 0.3),
    "angry": (10, 1, 1.15, 1.45, 0.7),
    "sad": (-14, -2, 0.78, 0.70, 0.1),
    "surprised": (18, 2, 1.05, 1.20, 0.6),
    "fear": (16, -1, 1.18, 0.90, 0.3),
    "disgusted": (-8, 0, 0.85, 0.95, 0.4),
    "contempt": (-5, 1, 0.90, 0.90, 0.5),
}
_RANGES = ("x-low", "low", "medium", "high", "x-high")


def emotion_prosody(emotion: str, intensity: str, rng: np.random.Generator) -> tuple[Prosody, float]:
    """Jittered prosody for an emotion at an intensity, and the probability of emphasising a word."""
    check_style(emotion, intensity)
    d_pitch, d_range, speed_f, amp_f, p_emph = _EMOTION_PROSODY[emotion]
    s = INTENSITY_SCALE[intensity] if emotion != "neutral" else 0.0
    pitch = 50 + s * d_pitch + rng.normal(0, 6)
    step = int(np.clip(round(2 + s * d_range + rng.normal(0, 0.5)), 0, 4))
    speed = 165 * (1 + s * (speed_f - 1)) * rng.uniform(0.88, 1.12)
    amplitude = 100 * (1 + s * (amp_f - 1)) * rng.uniform(0.9, 1.1)
    prosody = Prosody(
        pitch=int(np.clip(pitch, 5, 95)),
        pitch_range=_RANGES[step],
        speed=int(np.clip(speed, 110, 240)),
        amplitude=int(np.clip(amplitude, 40, 190)),
        word_gap=int(rng.integers(0, 3)),
    )
    return prosody, p_emph * max(s, 0.2)


def check_style(emotion: str, intensity: str) -> None:
    if emotion not in EMOTIONS:
        raise ValueError(f"unknown emotion {emotion!r}; expected one of {', '.join(EMOTIONS)}")
    if intensity not in INTENSITIES:
        raise ValueError(f"unknown intensity {intensity!r}; expected one of {', '.join(INTENSITIES)}")


def synthesize(text: str, voice: Voice, prosody: Prosody) -> np.ndarray:
    """Speak ``text`` with espeak-ng; returns (N,) float32 at 16 kHz."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise SpeechError("espeak-ng is not installed (apt-get install espeak-ng)")
    words = text.split()
    if prosody.emphasis is not None and 0 <= prosody.emphasis < len(words):
        i = prosody.emphasis
        body = " ".join(escape(w) for w in words[:i]) + f" <emphasis>{escape(words[i])}</emphasis> " + " ".join(escape(w) for w in words[i + 1:])
    else:
        body = escape(text)
    ssml = f'<speak><prosody range="{prosody.pitch_range}">{body}</prosody></speak>'
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        cmd = [exe, "-m", "-v", voice.name, "-p", str(prosody.pitch), "-s", str(prosody.speed),
               "-a", str(prosody.amplitude), "-g", str(prosody.word_gap), "-w", str(wav), ssml]
        try:
            subprocess.run(cmd, capture_output=True, timeout=60, check=True)
        except (OSError, subprocess.SubprocessError) as exc:
            raise SpeechError(f"espeak-ng failed for voice {voice.name}: {exc}") from exc
        audio = load_audio(wav)
    return audio.samples


# ---------------------------------------------------------------- real recordings

ASTERISK_SOUNDS = Path("/usr/share/asterisk/sounds")
ASTERISK_DOCS = Path("/usr/share/doc")


@dataclass(frozen=True)
class Recording:
    path: str
    transcript: str
    language: str  # "en" | "it"
    speaker: str
    gender: str
    license: str
    split: str  # "train" | "val" | "test", fixed by file name

    def to_dict(self) -> dict:
        return asdict(self)


_ASTERISK_SETS = (
    # (sound folder, transcript list, language, speaker, gender, licence)
    ("en_US_f_Allison", "asterisk-core-sounds-en/core-sounds-en.txt.gz", "en", "allison", "female", "CC-BY-SA-3.0 (Allison Smith)"),
    ("it_IT_m_Carlo", "asterisk-core-sounds-it/core-sounds-it.txt.gz", "it", "carlo", "male", "CC-BY-3.0 (Carlo Flora)"),
)
# more voices, read by the affect reader only (Debian asterisk-core-sounds-fr-wav, -ru-wav)
MORE_ASTERISK_SETS = (
    ("fr_CA_f_June", "asterisk-core-sounds-fr/core-sounds-fr.txt.gz", "fr", "june", "female", "CC-BY-SA-3.0 (June Wallack)"),
    ("ru_RU_f_IvrvoiceRU", "asterisk-core-sounds-ru/core-sounds-ru.txt.gz", "ru", "ivrvoice_ru", "female", "CC-BY-3.0 (Maxim Topal, ivrvoice.ru)"),
)


def real_recordings(sounds: Path = ASTERISK_SOUNDS, docs: Path = ASTERISK_DOCS, max_seconds: float = 12.0,
                    sets: tuple = _ASTERISK_SETS) -> list[Recording]:
    """Asterisk prompts that have a spoken transcript (tones and silences are left out); ``sets``: which voices,
    as ``_ASTERISK_SETS`` lists them (default: those the corpus uses)."""
    out = []
    for folder, listing, language, speaker, gender, licence in sets:
        listing_path = docs / listing
        if not (sounds / folder).is_dir() or not listing_path.exists():
            continue
        for name, text in _read_listing(listing_path).items():
            wav = sounds / folder / f"{name}.wav"
            if not wav.exists() or text.startswith("[") or not re.search(r"[A-Za-zÀ-ÿ]", text):
                continue
            if wav.stat().st_size > max_seconds * 8000 * 2 + 44:  # 8 kHz 16-bit files
                continue
            out.append(Recording(str(wav), text, language, speaker, gender, licence, split_for(f"{language}/{name}")))
    return out


def _read_listing(path: Path) -> dict[str, str]:
    lines = gzip.open(path, "rt", encoding="utf-8-sig").read().splitlines()
    out = {}
    for line in lines:
        if line.startswith(";") or ":" not in line:
            continue
        name, text = line.split(":", 1)
        name, text = name.strip(), text.strip()
        if name and text and " " not in name:
            out[name] = text
    return out


def split_for(key: str, val: float = 0.05, test: float = 0.10) -> str:
    """Deterministic split of a file/sentence key: about 85 % train, 5 % val, 10 % test."""
    u = int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "test" if u < test else "val" if u < test + val else "train"


def load_recording(rec: Recording) -> np.ndarray:
    return load_audio(rec.path).samples

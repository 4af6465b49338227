"""The two-stage pipeline as a library: ``analyze``, ``synthesize``, ``generate``.

    pipe = Pipeline(PipelineConfig())                          # loads the shipped weights once
    audio = load_audio("line.wav")
    text = pipe.analyze(audio).instruction                      # stage 1: speech -> instruction
    motion = pipe.synthesize(audio, text, seed=3).motion        # stage 2: instruction + speech -> motion

Stage 2's mouth is then sealed on P, B and M (``lipseal``), timed from the
dialogue text when given, else from what Whisper heard; stage-1 weights trained
to read words read the same words beside the speech. Speech features, what
Whisper heard and lip timings are cached by the audio's hash, so a new
instruction or seed reruns stage 2 only. Device and autocast are chosen here,
once; the models follow their inputs. Each call returns its result as a value
(``Analysis``, ``Synthesis``, ``GenerateResult``) with its timings and warnings.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .audio import Audio
from .checkpoint import CheckpointError
from .device import autocast, resolve_device
from .errors import Cancelled, InstructionError, ModelError, RequestError, excerpt
from .motion import Motion
from .refine import refine
from .refine.controls import MotionControls
from .refine.lipseal import closure_weight
from .speech.lips import MAX_NO_SPEECH, MIN_SCORE, LipTiming, time_lips
from .stage1.affect import Reading
from .stage1.wording import prefix, steered_sentence, template_sentence
from .stage2.model import load_stage2
from .speech.asr import chunks, trusted_words
from .speech.base import SpeechModelError

log = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
STAGE1_FILE = "stage1.safetensors"
STAGE2_FILE = "stage2.safetensors"
AFFECT_FILE = "affect.safetensors"  # the affect reader (optional: without it stage 1 votes as before)

Progress = Callable[[str, float], None]


# what stage 1 says of digital silence, instead of running the LLM on nothing
SILENT_INSTRUCTION = "A person is silent, with a relaxed face."
# Whisper's no-speech probability above which a chunk holds no speech (noise, hum, music): well above
# what speech, English or not, gets (MAX_NO_SPEECH only marks words as unsure)
NOT_SPEECH = 0.75
MAX_TRANSCRIPT_CHARS = 20000
MAX_WORDS_PER_SECOND = 10.0  # fast speech is about 4 words a second
HEARTBEAT_S = 2.0             # progress messages while a long step (speech recognition, lip timing) works

__all__ = ["Cancelled", "Pipeline", "PipelineConfig", "PipelineError", "Analysis", "Synthesis", "GenerateResult",
           "check_instruction", "check_output", "check_seed", "check_transcript"]


class PipelineError(ModelError):
    """The pipeline cannot run as configured: no trained weights (code no_weights), a missing or
    mismatched model (model_error), a bad option (bad_request)."""


@dataclass
class PipelineConfig:
    checkpoint_dir: str | Path | None = None  # None: the shipped weights
    device: str = "auto"                      # auto | cpu | cuda
    speech_path: str | Path | None = None     # local folder of the checkpoint's speech encoder, when not shipped
    content_path: str | Path | None = None    # local folder of the content encoder (paper: wav2vec 2.0)
    llm_path: str | Path | None = None        # local causal LM folder (default: SmolLM2-135M-Instruct)
    fps: float = 25.0
    prior_steps: int | None = None            # None: the checkpoint's default
    template: int = 0                         # which instruction template prompts the LLM
    affect: bool = True                       # the affect reader decides emotion, intensity and the speaker's sex
    steer_llm: bool = True                    # with the affect reader: the LLM words the face after the decided start
                                              # (False: the template sentence, no LLM)
    describe_samples: int = 8                 # without the affect reader: sampled sentences that vote on the emotion (0: greedy only)
    max_new_tokens: int = 48
    cache_size: int = 8                       # audio clips whose features stay cached
    lip_seal: bool = True                     # close the lips on P, B, M timed from words (lipseal)
    allow_untrained: bool = False             # benchmarks only: never for real output


@dataclass
class Analysis:
    """Stage 1's answer."""

    instruction: str
    words: str = ""                           # the words stage 1 read beside the speech ('' for none)
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    reading: Reading | None = None            # the affect reader's decision (None: no affect reader)


@dataclass
class Synthesis:
    """Stage 2's answer."""

    motion: Motion
    lips: LipTiming | None = None             # what timed the lip seal (None: seal off)
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass
class GenerateResult:
    instruction: str
    motion: Motion
    inferred: bool                            # True when stage 1 wrote the instruction
    timings: dict[str, float] = field(default_factory=dict)
    lips: LipTiming | None = None             # what timed the lip seal (None: seal off)
    warnings: list[str] = field(default_factory=list)


def checkpoint_paths(checkpoint_dir) -> tuple[Path, Path]:
    folder = Path(checkpoint_dir) if checkpoint_dir else WEIGHTS_DIR
    stage1, stage2 = folder / STAGE1_FILE, folder / STAGE2_FILE
    missing = [p.name for p in (stage1, stage2) if not p.is_file()]
    if missing:
        hint = "train them with `python -m backend train all`" if not checkpoint_dir else "pass the folder that holds them"
        raise PipelineError(f"no trained weights: {', '.join(missing)} not found in {folder}; {hint}", code="no_weights")
    return stage1, stage2


class Pipeline:
    def __init__(self, config: PipelineConfig | None = None):
        from .stage1.instructor import load_stage1
        from .speech import load_encoder
        from .language.text import load_text_encoder

        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # stdout/stderr stay clean for the CLI and the server
        self.config = config or PipelineConfig()
        if self.config.describe_samples < 0:
            raise PipelineError(f"describe_samples must be 0 or more, got {self.config.describe_samples}", code="bad_request")
        try:
            self.device = resolve_device(self.config.device)
        except ValueError as exc:  # device.py says why (an unknown name, no CUDA GPU): a user cause
            raise PipelineError(str(exc), code="bad_request") from exc
        stage1_path, stage2_path = checkpoint_paths(self.config.checkpoint_dir)
        need_trained = not self.config.allow_untrained
        try:
            self.stage1, self.stage1_meta = load_stage1(stage1_path, require_trained=need_trained)
            self.stage2, self.stage2_meta = load_stage2(stage2_path, require_trained=need_trained)
        except CheckpointError as exc:
            raise PipelineError(f"{exc}. Randomly initialised weights are never used for output; train with `python -m backend train all`.",
                                code=exc.code) from exc
        self.stage1.to(self.device)
        self.stage2.to(self.device)
        self.affect, self._word_reader = None, None
        affect_path = stage1_path.parent / AFFECT_FILE
        if self.config.affect and affect_path.is_file():
            from .stage1.affect import load_affect

            try:
                self.affect, self.affect_meta = load_affect(affect_path)
            except CheckpointError as exc:
                raise PipelineError(str(exc), code=exc.code) from exc
            self.affect.to(self.device)

        # The checkpoints name the speech encoders they were trained on.
        style_kind = self.stage1_meta.get("speech_encoder", "whisper-tiny.en")
        content_kind = self.stage2_meta.get("speech_encoder", "whisper-tiny.en")
        self.style_encoder = load_encoder(style_kind, self.config.speech_path).to(self.device)
        if content_kind == style_kind and self.config.content_path in (None, self.config.speech_path):
            self.content_encoder = self.style_encoder
        else:
            self.content_encoder = load_encoder(content_kind, self.config.content_path).to(self.device)
        self._minilm = load_text_encoder().to(self.device)
        self._text_encoder = None
        self._llm = None
        self._transcriber = None
        self._features: OrderedDict[str, dict[str, torch.Tensor]] = OrderedDict()
        self._lips: OrderedDict[tuple, LipTiming] = OrderedDict()
        self._heard: OrderedDict[str, list] = OrderedDict()
        self.stats = {"stage1_runs": 0, "feature_runs": 0, "stage2_runs": 0}

    # ---- helpers ------------------------------------------------------------------

    def _autocast(self):
        return autocast(self.device)

    @property
    def llm(self):
        """(model, tokenizer), loaded on first use: stage 1, and stage 2 when it reads instructions through it."""
        if self._llm is None:
            from .language.llm import load_llm

            model, tokenizer = load_llm(self.config.llm_path)
            self._llm = (model.to(self.device), tokenizer)
        return self._llm

    @property
    def text_encoder(self):
        """MiniLM, and the LLM's reading of the instruction when the stage 2 weights ask for it (first use)."""
        if self._text_encoder is None:
            from .language.text import InstructionText, load_lm_text_encoder

            lm = None
            if self.stage2.config.lm_text_dim:
                lm = load_lm_text_encoder(self.llm)
                if lm.dim != self.stage2.config.lm_text_dim:
                    raise PipelineError(
                        f"the stage 2 weights read instructions through an LLM of width {self.stage2.config.lm_text_dim}"
                        f" ({self.stage2_meta.get('llm', 'unknown')}); the LLM given has width {lm.dim}"
                    )
            self._text_encoder = InstructionText(self._minilm, lm)
        return self._text_encoder

    @property
    def transcriber(self):
        """Whisper tiny.en speech recognition (CTranslate2), loaded on first use."""
        if self._transcriber is None:
            from .speech.asr import Transcriber

            self._transcriber = Transcriber()
        return self._transcriber

    def _timed(self, name: str, timings: dict, fn, *args):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = fn(*args)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - start
        return out

    def is_cached(self, audio: Audio) -> bool:
        """Whether this audio's speech features are cached (Regenerate will skip the encoders)."""
        return audio.sha1 in self._features

    def clear_cache(self) -> None:
        self._features.clear()
        self._lips.clear()
        self._heard.clear()

    def _remember(self, cache: OrderedDict, key, value):
        cache[key] = value
        while len(cache) > self.config.cache_size:
            cache.popitem(last=False)
        return value

    def features(self, audio: Audio, timings: dict | None = None) -> dict[str, torch.Tensor]:
        """Speech features at the motion frame rate, cached by the audio's hash:
        'style' (1, T, D1) for stage 1, 'content' (1, T, D2) for stage 2."""
        key = audio.sha1
        if key in self._features:
            self._features.move_to_end(key)
            return self._features[key]
        timings = {} if timings is None else timings
        samples = torch.from_numpy(audio.samples).to(self.device)
        windows = None
        with torch.no_grad(), self._autocast():
            if self._recognition_reads_style_windows():
                style, windows = self._timed("speech_features", timings, self.style_encoder.features_over, samples,
                                             chunks(audio.samples), self.config.fps)
            else:
                style = self._timed("speech_features", timings, self.style_encoder.features_at, samples, self.config.fps)
            if self.content_encoder is self.style_encoder:
                content = style
            else:
                content = self._timed("speech_features", timings, self.content_encoder.features_at, samples, self.config.fps)
        feats = {"style": style.float().unsqueeze(0), "content": content.float().unsqueeze(0)}
        if windows is not None:  # (chunks, 1500, 384): what speech recognition's decoder reads, once
            feats["whisper_windows"] = windows.float().cpu()
        self.stats["feature_runs"] += 1
        return self._remember(self._features, key, feats)

    def _with_heartbeat(self, report: Progress, stage: str, fn):
        """Run ``fn`` in a helper thread and report ``stage`` progress every ``HEARTBEAT_S`` while it works,
        so a long recognition or alignment never looks like a stalled backend. A cancel raised by
        ``report`` returns at once; the helper finishes on its own and its answer is dropped."""
        box: dict = {}

        def run():
            try:
                box["value"] = fn()
            except BaseException as exc:  # handed to the caller's thread below
                box["error"] = exc

        helper = threading.Thread(target=run, name=f"avitalk-{stage}", daemon=True)
        helper.start()
        beats = 0
        while True:
            helper.join(HEARTBEAT_S)
            if not helper.is_alive():
                break
            beats += 1
            report(stage, 1.0 - 0.5 ** beats * 0.9)  # creeps towards 1 without knowing the end
        if "error" in box:
            raise box["error"]
        return box["value"]

    def _recognition_reads_style_windows(self) -> bool:
        """Whether speech recognition can read the style encoder's output (one pass over the speech): the
        shipped Whisper tiny.en on both sides."""
        return (self.style_encoder.name == "whisper-tiny.en" and self.config.speech_path is None
                and hasattr(self.style_encoder, "features_over"))

    def lip_timing(self, audio: Audio, transcript: str | None = None, language: str = "en",
                   timings: dict | None = None, progress: Progress | None = None) -> LipTiming:
        """Phone timings for the lip seal, cached by the audio's hash and the dialogue text."""
        key = (audio.sha1, " ".join((transcript or "").split()), language)
        if key in self._lips:
            self._lips.move_to_end(key)
            return self._lips[key]
        timings = {} if timings is None else timings
        report = progress or (lambda stage, fraction: None)
        check_transcript(transcript, audio)
        try:
            heard = None if key[1] else self._with_heartbeat(report, "lip_seal", lambda: self.heard(audio, timings))
            lips = self._timed("lip_timing", timings, self._with_heartbeat, report, "lip_seal",
                               lambda: time_lips(audio.samples, key[1] or None, heard, language))
        except (SpeechModelError, RuntimeError, OSError) as exc:  # the seal is a refinement: never fail the take for it
            log.warning("lip seal skipped: %s", exc)
            lips = LipTiming([], "none", "", [f"speech recognition failed, the generator's closures are kept: {exc}"])
        return self._remember(self._lips, key, lips)

    def heard(self, audio: Audio, timings: dict | None = None) -> list:
        """What Whisper heard (``speech.asr.Heard`` per chunk), cached by the audio's hash."""
        if audio.sha1 in self._heard:
            self._heard.move_to_end(audio.sha1)
            return self._heard[audio.sha1]
        windows = self._features.get(audio.sha1, {}).pop("whisper_windows", None)  # read once: the answer is cached
        encoded = None if windows is None else windows.numpy()
        heard = self._timed("speech_recognition", {} if timings is None else timings, self.transcriber.transcribe, audio.samples, encoded)
        return self._remember(self._heard, audio.sha1, heard)

    def words(self, audio: Audio, transcript: str | None = None, language: str = "en", timings: dict | None = None) -> str:
        """The words stage 1 reads: the dialogue text when given, else what Whisper was sure it heard;
        '' for a language other than English (the text encoder and Whisper tiny.en know English only)
        or when recognition fails (stage 1 then works from the speech alone)."""
        if not language.lower().startswith("en"):
            return ""
        if transcript and transcript.strip():
            return " ".join(transcript.split())
        try:
            return trusted_words(self.heard(audio, timings), MIN_SCORE, MAX_NO_SPEECH)
        except (SpeechModelError, RuntimeError, OSError) as exc:
            log.warning("stage 1 reads the speech alone, speech recognition failed: %s", exc)
            return ""

    def _hears_no_speech(self, audio: Audio, report: Progress, timings: dict) -> bool:
        """Whether Whisper finds no speech in any chunk of the audio (its recognition is cached for the lip
        seal); False when recognition fails, so stage 1 then runs as usual."""
        try:
            heard = self._with_heartbeat(report, "features", lambda: self.heard(audio, timings))
        except (SpeechModelError, RuntimeError, OSError) as exc:
            log.warning("no speech check skipped, speech recognition failed: %s", exc)
            return False
        return bool(heard) and all(h.no_speech > NOT_SPEECH for h in heard)

    # ---- the two stages -------------------------------------------------------------

    def analyze(self, audio: Audio, progress: Progress | None = None, transcript: str | None = None,
                language: str = "en") -> Analysis:
        """Stage 1: speech (and the words of the line, see ``words``) -> an instruction sentence about
        the speaker's state and face. Digital silence skips the LLM: a neutral instruction and a warning."""
        check_transcript(transcript, audio)
        report = progress or (lambda stage, fraction: None)
        warnings = list(audio.warnings)
        if audio.silent:
            warnings.append(f"nobody speaks in this audio; stage 1 did not run and the instruction is neutral: {SILENT_INSTRUCTION!r}")
            return Analysis(SILENT_INSTRUCTION, "", {}, warnings)
        timings: dict[str, float] = {}
        report("features", 0.0)
        feats = self.features(audio, timings)
        if not (transcript and transcript.strip()) and self._hears_no_speech(audio, report, timings):
            warnings.append("no speech heard in this audio (noise or other sounds?); stage 1 did not run and the "
                            f"instruction is neutral: {SILENT_INSTRUCTION!r}")
            return Analysis(SILENT_INSTRUCTION, "", timings, warnings)
        words, said = None, ""
        if self.stage1.config.qformer.words_dim or self.affect is not None:  # weights trained to read the words of the line
            said = self._with_heartbeat(report, "features", lambda: self.words(audio, transcript, language, timings))
            words = self._minilm.encode([said]).float() if said and self.stage1.config.qformer.words_dim else None  # (1, 384)
        report("stage1", 0.3)
        reading = None
        if self.affect is not None:
            reading = self._timed("affect", timings, self.read_affect, audio, feats["style"], said)
            if not self.config.steer_llm or reading.emotion is None:
                text = template_sentence(reading)
            else:
                model, tokenizer = self.llm
                with torch.no_grad(), self._autocast():
                    rest = self._timed("stage1", timings, lambda: self.stage1.continue_sentence(
                        feats["style"], model, tokenizer, prefix(reading), self.config.template, self.config.max_new_tokens, words))
                text = steered_sentence(reading, rest)
        else:
            model, tokenizer = self.llm
            with torch.no_grad(), self._autocast():
                text = self._timed(
                    "stage1", timings, lambda: self.stage1.describe(
                        feats["style"], model, tokenizer, template=self.config.template, max_new_tokens=self.config.max_new_tokens,
                        words=words, samples=self.config.describe_samples,
                    )
                )
        self.stats["stage1_runs"] += 1
        report("stage1", 1.0)
        return Analysis(text, said, timings, warnings, reading)

    def read_affect(self, audio: Audio, style: torch.Tensor, said: str) -> Reading:
        """The affect reader's decision for one clip: (1, T, D) speech features, the clip's cues, the words."""
        from .stage1.affect import WordReader, pool
        from .stage1.cues import CUE_NAMES, cues

        if self._word_reader is None:
            self._word_reader = WordReader(self._minilm)
        values = cues(audio.samples, audio.sample_rate)
        with torch.no_grad():
            return self.affect.decide(pool(style.float()), torch.from_numpy(values)[None].to(self.device),
                                      self._word_reader([said]).to(self.device), dict(zip(CUE_NAMES, values.tolist())))

    def sample_style(self, instruction: str, seed: int = 0, timings: dict | None = None) -> torch.Tensor:
        """Instruction -> MiniLM (+ SmolLM2) -> aligned feature -> diffusion prior -> style embedding (1, D_style)."""
        timings = {} if timings is None else timings
        with torch.no_grad(), self._autocast():
            text_emb = self._timed("text_encoder", timings, self.text_encoder.encode, [instruction])  # (1, 384 [+ 576])
            return self._timed(
                "stage2_prior", timings, lambda: self.stage2.sample_style(text_emb.float(), seed=seed, steps=self.config.prior_steps)
            ).float()

    def synthesize(
        self,
        audio: Audio,
        instruction: str,
        seed: int = 0,
        controls: MotionControls | None = None,
        progress: Progress | None = None,
        transcript: str | None = None,
        language: str = "en",
    ) -> Synthesis:
        """Stage 2: instruction + speech -> motion at ``config.fps``, lips sealed on P, B, M.

        ``transcript`` (the dialogue text, optional) times the seal instead of
        speech recognition; ``language`` is its language for the aligner.
        """
        instruction = check_instruction(instruction)
        check_seed(seed)
        check_transcript(transcript, audio)
        report = progress or (lambda stage, fraction: None)
        timings: dict[str, float] = {}
        report("features", 0.0)
        feats = self.features(audio, timings)
        report("stage2_prior", 0.5)
        with torch.no_grad(), self._autocast():
            style = self.sample_style(instruction, seed, timings)  # (1, D_style)
            report("stage2_generator", 0.75)
            packed = self._timed("stage2_generator", timings, self.stage2.synthesize, feats["content"], None, style.float())
        packed = packed[0].float().cpu().numpy()  # (T, C)
        report("stage2_generator", 1.0)
        lips, closure = None, None
        if self.config.lip_seal:
            report("lip_seal", 0.0)
            lips = self.lip_timing(audio, transcript, language, timings, report)
            closure = closure_weight(lips.phones, len(packed), self.config.fps)
        packed = refine(packed, self.config.fps, seed, controls, closure)
        if self.config.lip_seal:
            report("lip_seal", 1.0)
        self.stats["stage2_runs"] += 1
        motion = Motion.from_packed(packed, self.config.fps, instruction=instruction, seed=int(seed), source=audio.source)
        return Synthesis(motion, lips, timings, list(audio.warnings))

    def generate(
        self,
        audio: Audio,
        instruction: str | None = None,
        seed: int = 0,
        controls: MotionControls | None = None,
        progress: Progress | None = None,
        transcript: str | None = None,
        language: str = "en",
    ) -> GenerateResult:
        """Both stages; with ``instruction`` given, stage 1 is skipped."""
        check_seed(seed)
        check_transcript(transcript, audio)
        inferred = instruction is None
        timings: dict[str, float] = {}
        warnings: list[str] = []
        if inferred:
            analysis = self.analyze(audio, progress, transcript, language)
            instruction, timings, warnings = analysis.instruction, dict(analysis.timings), list(analysis.warnings)
        synthesis = self.synthesize(audio, instruction, seed, controls, progress, transcript, language)
        for name, value in synthesis.timings.items():
            timings[name] = timings.get(name, 0.0) + value
        timings["total"] = sum(timings.values())
        warnings += [w for w in synthesis.warnings if w not in warnings]
        return GenerateResult(synthesis.motion.instruction, synthesis.motion, inferred, timings, synthesis.lips, warnings)

    def describe(self) -> dict:
        """What is loaded, for `Check backend` and logs."""
        return {
            "device": str(self.device),
            "torch": torch.__version__,
            "speech_encoder": self.style_encoder.name,
            "content_encoder": self.content_encoder.name,
            "stage1": self.stage1_meta,
            "stage2": self.stage2_meta,
            "affect": self.affect is not None,
            "llm_loaded": self._llm is not None,
            "lip_seal": self.config.lip_seal,
        }


MAX_INSTRUCTION_CHARS = 1000
DROPPED_CATEGORIES = ("Cc", "Cf", "Cs", "Co", "Cn", "So", "Sk", "Mn", "Me")  # controls, invisibles, emoji and their marks


def _is_latin(ch: str) -> bool:
    return ord(ch) < 0x250 or 0x1E00 <= ord(ch) <= 0x1EFF  # Basic Latin .. Latin Extended-B, Latin Extended Additional


def check_instruction(text) -> str:
    """A usable instruction: a non-empty English sentence of sane length.

    Control and invisible characters (NUL, zero-width space, ...) and emoji are
    dropped, since they change what the text models read without meaning
    anything; text mostly in another script is refused, as the text models
    read English only."""
    if not isinstance(text, str):
        raise InstructionError(f"the instruction must be text, got {type(text).__name__}")
    if len(text) > 4 * MAX_INSTRUCTION_CHARS:
        raise InstructionError(f"the instruction is {len(text)} characters long; keep it under {MAX_INSTRUCTION_CHARS}")
    text = unicodedata.normalize("NFC", " ".join(text.split()))
    text = "".join(ch for ch in text if unicodedata.category(ch) not in DROPPED_CATEGORIES)
    text = " ".join(text.split())
    if not text:
        raise InstructionError("the instruction is empty: describe the speaker's state and face, e.g. 'a calm woman, slight smile'")
    if len(text) > MAX_INSTRUCTION_CHARS:
        raise InstructionError(f"the instruction is {len(text)} characters long; keep it under {MAX_INSTRUCTION_CHARS}")
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        raise InstructionError(f"the instruction has no words: {excerpt(text)}")
    if sum(not _is_latin(ch) for ch in letters) * 2 > len(letters):
        raise InstructionError(f"instructions are read in English, and this one is not: {excerpt(text)}; "
                               "write it in English, e.g. 'a calm woman, slight smile'")
    return text


def check_seed(seed) -> int:
    """A seed is an integer in 0..MAX_SEED (not a bool, not a float)."""
    from .protocol import MAX_SEED

    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise RequestError(f"the seed must be a whole number from 0 to {MAX_SEED}, got {excerpt(seed)}")
    return int(seed)


def check_transcript(transcript, audio: Audio | None = None) -> str | None:
    """The dialogue text, when given: text of sane length, and not absurd for the audio's length
    (aligning thousands of words to a few seconds runs for minutes and times nothing)."""
    if transcript is None:
        return None
    if not isinstance(transcript, str):
        raise RequestError(f"the transcript must be text, got {type(transcript).__name__}")
    if len(transcript) > MAX_TRANSCRIPT_CHARS:
        raise RequestError(f"the transcript is {len(transcript)} characters long; keep it under {MAX_TRANSCRIPT_CHARS}")
    if audio is not None:
        words = len(transcript.split())
        seconds = max(audio.duration, 1.0)
        if words > MAX_WORDS_PER_SECOND * seconds:
            raise RequestError(f"the transcript has {words} words for {audio.duration:.1f} s of audio (more than "
                               f"{MAX_WORDS_PER_SECOND:g} a second): give the text of this clip only")
    return transcript


def check_output(output, audio_path=None) -> Path:
    """A motion file to write: not the input audio, in a folder that exists (checked before the run)."""
    if not isinstance(output, (str, os.PathLike)) or not str(output) or "\0" in str(output):
        raise RequestError(f"the output must be a file path, got {excerpt(output)}")
    path = Path(output)
    if path.is_dir():
        raise RequestError(f"the output {excerpt(str(path))} is a folder; name a motion file (.npz) in it")
    folder = path.resolve().parent
    if not folder.is_dir():
        raise RequestError(f"the output folder does not exist: {folder}")
    if audio_path is not None and path.resolve() == Path(audio_path).resolve():
        raise RequestError(f"the output {excerpt(str(path))} is the input audio; name another file")
    return path

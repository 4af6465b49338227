"""Build the training corpus: speech -> alignment -> teacher motion -> instructions -> files.

    python -m backend corpus build --out DIR [--n-clips N] [--seed S] [--workers 2]

Every clip is planned from ``(seed, index)`` alone, so the corpus is the same
whatever the number of workers, and a rerun skips finished clips (a clip is
finished when its ``clips/<id>.json`` exists; files are written atomically,
the json last). Per clip:

- ``clips/<id>.wav``: augmented 16 kHz mono speech (16-bit PCM)
- ``clips/<id>.npz``: the teacher's motion (``backend.motion``), 25 fps
- ``clips/<id>.json``: transcript, phones and words with times, emotion,
  intensity, gender, voice, speaker, source, split, instructions, prosody,
  augmentation parameters

``manifest.jsonl`` (one json per clip, sorted by id) is rebuilt from the json
files at the end. Clips that cannot be aligned leave ``clips/<id>.skip.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import random
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ..phones import Segment
from ..speech.align import AlignmentError, align_full
from ..motion import save_motion
from . import augment
from .instructions import facial_actions, instructions
from .sentences import EMOTIONAL, NEUTRAL
from .speech import EMOTIONS, INTENSITIES, Recording, SpeechError, Voice, emotion_prosody, load_recording, real_recordings, synthesize, voices
from .teacher import TeacherConfig, teach_full

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")


@dataclass
class BuildConfig:
    out: str
    n_clips: int = 200
    seed: int = 0
    workers: int = 2
    real_share: float = 0.25  # share of clips taken from real recordings
    italian_share: float = 0.3  # share of real clips in Italian
    n_instructions: int = 5
    keep_clean: bool = False  # also store clips/<id>.clean.wav


@dataclass
class ClipPlan:
    id: str
    index: int
    seed: int
    source: str  # "espeak" | "recording"
    split: str
    emotion: str
    intensity: str
    transcript: str
    language: str
    gender: str
    voice: dict | None = None  # Voice fields for espeak clips
    recording: dict | None = None  # Recording fields for real clips


def plan_clip(index: int, config: BuildConfig, recordings: list[Recording], voice_bank: list[Voice]) -> ClipPlan:
    """The clip ``index`` of a corpus, decided by ``(seed, index)`` only."""
    rng = np.random.default_rng([config.seed, index])
    clip_seed = int(rng.integers(0, 2**31 - 1))
    clip_id = f"s{config.seed}_{index:06d}"
    if recordings and rng.random() < config.real_share:
        language = "it" if rng.random() < config.italian_share else "en"
        pool = [r for r in recordings if r.language == language] or recordings
        rec = pool[int(rng.integers(len(pool)))]
        return ClipPlan(clip_id, index, clip_seed, "recording", rec.split, "neutral", "moderate", rec.transcript,
                        rec.language, rec.gender, recording=rec.to_dict())
    split = str(rng.choice(SPLITS, p=[0.85, 0.05, 0.10]))
    pool = [v for v in voice_bank if v.heldout == (split == "test")]
    voice = pool[int(rng.integers(len(pool)))]
    emotion = str(rng.choice(EMOTIONS))
    intensity = "moderate" if emotion == "neutral" else str(rng.choice(INTENSITIES))
    bank = EMOTIONAL[emotion] if emotion != "neutral" and rng.random() < 0.6 else NEUTRAL
    sentence = bank[int(rng.integers(len(bank)))]
    return ClipPlan(clip_id, index, clip_seed, "espeak", split, emotion, intensity, sentence, "en", voice.gender, voice=asdict(voice))


def make_clip(plan: ClipPlan, config: BuildConfig, clips_dir: Path) -> dict:
    """Synthesise/load, align, teach, describe and write one clip; returns its json record."""
    rng = np.random.default_rng(plan.seed)
    record: dict = {"format_version": FORMAT_VERSION, **asdict(plan)}
    timings = {}
    t0 = time.perf_counter()
    if plan.source == "espeak":
        voice = Voice(**plan.voice)
        prosody, p_emphasis = emotion_prosody(plan.emotion, plan.intensity, rng)
        if rng.random() < p_emphasis:
            prosody.emphasis = int(rng.integers(len(plan.transcript.split())))
        clean = synthesize(plan.transcript, voice, prosody)
        lead, tail = (int(rng.uniform(0.1, 0.5) * SAMPLE_RATE) for _ in range(2))
        clean = np.pad(clean, (lead, tail))  # the face rests before and after speaking
        record.update(speaker=voice.name, voice=voice.name, prosody=asdict(prosody), license="synthetic (espeak-ng)")
    else:
        rec = Recording(**plan.recording)
        clean = load_recording(rec)
        record.update(speaker=rec.speaker, voice=None, prosody=None, license=rec.license, audio_source=rec.path)
    timings["speech"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    alignment = align_full(clean, plan.transcript, plan.language)
    timings["align"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    phones = [Segment(p.label, round(p.start, 3), round(p.end, 3)) for p in alignment.phones]  # exactly what the json stores
    taught = teach_full(phones, clean, plan.emotion, plan.intensity, plan.seed, TeacherConfig(), SAMPLE_RATE)
    jaw = np.zeros((len(taught.emotion_jaw), 3), dtype=np.float32)
    jaw[:, 0] = taught.emotion_jaw
    actions = facial_actions(taught.emotion_expression, jaw)
    texts = instructions(plan.emotion, plan.intensity, plan.gender, actions, plan.seed, config.n_instructions)
    motion = taught.motion
    motion.instruction = texts[0]
    motion.source = f"avitalk-corpus:{plan.id}"
    timings["teacher"] = time.perf_counter() - t0

    params = augment.random_params(rng)
    audio = augment.apply(clean, params)
    record.update(
        duration=len(clean) / SAMPLE_RATE,
        phones=[[p.label, p.start, p.end] for p in phones],
        words=[[w.label, round(w.start, 3), round(w.end, 3)] for w in alignment.words],
        alignment_warnings=alignment.warnings,
        actions=[[g, round(v, 3)] for g, v in actions],
        instructions=texts,
        augmentation=params.to_dict(),
        fps=motion.fps,
        n_frames=motion.n_frames,
        wav=f"clips/{plan.id}.wav",
        motion=f"clips/{plan.id}.npz",
        timings={k: round(v, 4) for k, v in timings.items()},
    )
    _write_wav(clips_dir / f"{plan.id}.wav", audio)
    if config.keep_clean:
        _write_wav(clips_dir / f"{plan.id}.clean.wav", clean)
        record["clean_wav"] = f"clips/{plan.id}.clean.wav"
    save_motion(clips_dir / f"{plan.id}.npz", motion)
    _write_json(clips_dir / f"{plan.id}.json", record)
    return record


def _write_wav(path: Path, samples: np.ndarray) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".clip-", suffix=".wav", dir=path.parent)
    os.close(fd)
    try:
        sf.write(tmp, np.clip(samples, -1.0, 1.0), SAMPLE_RATE, subtype="PCM_16")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _write_json(path: Path, data: dict) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".clip-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _is_done(clips_dir: Path, clip_id: str) -> bool:
    return (clips_dir / f"{clip_id}.json").exists() or (clips_dir / f"{clip_id}.skip.json").exists()


def _work(job: tuple[ClipPlan, BuildConfig, str]) -> tuple[str, str, dict]:
    plan, config, clips_dir = job
    try:
        record = make_clip(plan, config, Path(clips_dir))
        return plan.id, "ok", record.get("timings", {})
    except (AlignmentError, SpeechError) as exc:
        _write_json(Path(clips_dir) / f"{plan.id}.skip.json", {"id": plan.id, "reason": str(exc), "plan": asdict(plan)})
        return plan.id, "skipped", {"reason": str(exc)}


def build(config: BuildConfig) -> dict:
    """Build (or finish) the corpus in ``config.out``; returns a summary."""
    if config.n_clips < 1:
        raise ValueError("--n-clips must be at least 1")
    if config.workers < 1:
        raise ValueError("--workers must be at least 1")
    if not 0.0 <= config.real_share <= 1.0:
        raise ValueError("--real-share must be between 0 and 1")
    out = Path(config.out)
    clips_dir = out / "clips"
    clips_dir.mkdir(parents=True, exist_ok=True)
    recordings = real_recordings() if config.real_share > 0 else []
    bank = voices()
    plans = [plan_clip(i, config, recordings, bank) for i in range(config.n_clips)]
    todo = [p for p in plans if not _is_done(clips_dir, p.id)]
    summary = {"planned": len(plans), "already_done": len(plans) - len(todo), "made": 0, "skipped": 0, "seconds": {}}
    t0 = time.perf_counter()
    jobs = [(p, config, str(clips_dir)) for p in todo]
    if config.workers == 1 or len(jobs) <= 1:
        results = map(_work, jobs)
        pool = None
    else:
        pool = multiprocessing.get_context("spawn").Pool(config.workers)
        results = pool.imap_unordered(_work, jobs)
    totals: dict[str, float] = {}
    try:
        for k, (clip_id, status, info) in enumerate(results, 1):
            if status == "ok":
                summary["made"] += 1
                for key, value in info.items():
                    totals[key] = totals.get(key, 0.0) + value
            else:
                summary["skipped"] += 1
                log.warning("skipped %s: %s", clip_id, info.get("reason"))
            if k % 50 == 0:
                log.info("%d/%d clips", k, len(jobs))
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    summary["wall_seconds"] = round(time.perf_counter() - t0, 2)
    summary["seconds"] = {k: round(v / max(summary["made"], 1), 4) for k, v in totals.items()}
    summary["clips_in_manifest"] = write_manifest(out)
    return summary


def write_manifest(out: Path) -> int:
    """Rebuild ``manifest.jsonl`` from ``clips/*.json``; returns the number of clips."""
    clips_dir = Path(out) / "clips"
    records = []
    for path in sorted(clips_dir.glob("*.json")):
        if path.name.endswith(".skip.json"):
            continue
        with open(path) as fh:
            records.append(json.load(fh))
    fd, tmp = tempfile.mkstemp(prefix=".manifest-", suffix=".jsonl", dir=out)
    with os.fdopen(fd, "w") as fh:
        for rec in records:
            fh.write(json.dumps(rec) + "\n")
    os.replace(tmp, Path(out) / "manifest.jsonl")
    return len(records)


def write_subset(corpus: Path, out: Path, train_clips: int, seed: int = 0) -> dict:
    """``out/manifest.jsonl`` with ``train_clips`` random train/val rows of ``corpus`` and all its
    test rows, and ``out/clips`` linking to the corpus's clips (nothing is copied)."""
    rows = [json.loads(line) for line in (corpus / "manifest.jsonl").read_text().splitlines() if line.strip()]
    train = [r for r in rows if r.get("split") != "test"]
    if train_clips < 1 or train_clips > len(train):
        raise ValueError(f"--train-clips must be between 1 and {len(train)}, got {train_clips}")
    random.Random(seed).shuffle(train)
    chosen = train[:train_clips] + [r for r in rows if r.get("split") == "test"]
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in chosen))
    if not (out / "clips").exists():
        (out / "clips").symlink_to((corpus / "clips").resolve(), target_is_directory=True)
    return {"clips_in_manifest": len(chosen), "train_and_val": train_clips}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend corpus", description="Build the AVI-Talk training corpus.")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build or resume a corpus")
    b.add_argument("--out", required=True, help="corpus folder (created; finished clips are kept)")
    b.add_argument("--n-clips", type=int, default=BuildConfig.n_clips)
    b.add_argument("--seed", type=int, default=BuildConfig.seed)
    b.add_argument("--workers", type=int, default=BuildConfig.workers)
    b.add_argument("--real-share", type=float, default=BuildConfig.real_share, help="share of clips from real recordings")
    b.add_argument("--keep-clean", action="store_true", help="also store the clean (unaugmented) audio")
    m = sub.add_parser("manifest", help="rebuild manifest.jsonl from the clip files")
    m.add_argument("--out", required=True)
    s = sub.add_parser("subset", help="a smaller training view of a corpus: N random train/val clips plus every test clip")
    s.add_argument("--corpus", required=True, help="the built corpus")
    s.add_argument("--out", required=True, help="new folder: its manifest.jsonl and a link to the corpus's clips/")
    s.add_argument("--train-clips", type=int, required=True)
    s.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "manifest":
        print(json.dumps({"clips_in_manifest": write_manifest(Path(args.out))}))
        return 0
    if args.command == "subset":
        print(json.dumps(write_subset(Path(args.corpus), Path(args.out), args.train_clips, args.seed)))
        return 0
    config = BuildConfig(out=args.out, n_clips=args.n_clips, seed=args.seed, workers=args.workers,
                         real_share=args.real_share, keep_clean=args.keep_clean)
    print(json.dumps(build(config), indent=1))
    return 0

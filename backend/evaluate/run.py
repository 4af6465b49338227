"""``python -m backend evaluate``: the evaluation protocol (README.md here) over held-out clips, or one file.

    python -m backend evaluate [--checkpoint DIR] [--corpus DIR] [--split test] [--limit N] [--device auto] [--json OUT]
                               [--inferred] [--text-clips 40] [--follow-clips 2] [--diversity-clips 4] [--seeds 5] [-v]
    python -m backend evaluate --acted [--acted-cache data/affect]   # real acted speech, leave one pack out (alone, or beside the corpus)
    python -m backend evaluate --teacher [--corpus DIR] ...          # score the corpus's own motions (no weights needed)
    python -m backend evaluate --audio FILE --transcript TEXT [--checkpoint DIR]   # generate from the audio alone
    python -m backend evaluate --motion FILE --audio FILE --transcript TEXT        # score an existing motion
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..options import add_pipeline_options, pipeline_config
from ..errors import RequestError
from ..phones import Segment
from ..motion import Motion, MotionFileError, load_motion, resample
from . import emotion
from .follow import follow_set, unseen
from .geometry import HeadGeometry, default_geometry
from .metrics import LipSyncCounts, face_dynamics_deviation, lip_sync_counts, lip_vertex_error
from ..stage1.wording import well_formed
from .text_metrics import bleu, emotion_accuracy, rouge_l

log = logging.getLogger(__name__)

DEFAULT_CORPUS = "data/corpus"
SUBSETS = {"espeak": "tts", "recording": "real"}


# ---------------------------------------------------------------- one motion


def lip_scores(geometry: HeadGeometry, motion: Motion, phones: list[Segment]) -> LipSyncCounts:
    gap = geometry.lip_gap(geometry.vertices(motion))  # (T,) mm
    return lip_sync_counts(gap, motion.fps, phones, geometry.closed_gap_mm)


def align_audio(path: str, transcript: str, language: str = "en"):
    from ..speech.align import align_full
    from ..audio import load_audio

    audio = load_audio(path)
    return audio, align_full(audio.samples, transcript, language).phones


MAX_LENGTH_DIFF_FRAMES = 2  # a motion made for the audio has round(seconds * fps) frames


def check_length(motion: Motion, seconds: float, motion_path: str) -> None:
    """Refuse a motion whose length is not its audio's: its scores would compare the wrong frames."""
    expected = round(seconds * motion.fps)
    if abs(motion.n_frames - expected) > MAX_LENGTH_DIFF_FRAMES:
        raise MotionFileError(f"motion file {str(motion_path)!r} has {motion.n_frames} frames "
                              f"({motion.n_frames / motion.fps:.2f} s at {motion.fps:g} fps), the audio lasts "
                              f"{seconds:.2f} s ({expected} frames); more than {MAX_LENGTH_DIFF_FRAMES} frames apart, "
                              f"so it is not the motion of this audio")


def score_motion(motion_path: str, audio_path: str, transcript: str, language: str = "en") -> dict:
    """Lip-closure F1 and vowel opening of an existing motion against its audio's forced alignment."""
    audio, phones = align_audio(audio_path, transcript, language)
    motion = load_motion(motion_path)
    check_length(motion, audio.duration, motion_path)
    geometry = default_geometry()
    return {"motion": str(motion_path), **lip_scores(geometry, motion, phones).as_dict(),
            "emotion": emotion.classify(motion.expression), "closed_gap_mm": geometry.closed_gap_mm}


def score_audio(pipe, audio_path: str, transcript: str, language: str = "en", seed: int = 0) -> dict:
    """Generate from the audio alone (stage 1 then stage 2); the transcript only aligns the audio for scoring."""
    audio, phones = align_audio(audio_path, transcript, language)
    result = pipe.generate(audio, seed=seed)
    geometry = default_geometry()
    return {"audio": str(audio_path), "instruction": result.instruction, **lip_scores(geometry, result.motion, phones).as_dict(),
            "emotion": emotion.classify(result.motion.expression), "closed_gap_mm": geometry.closed_gap_mm}


# ---------------------------------------------------------------- corpus


@dataclass
class Tally:
    """Per-subset sums; ``summary()`` turns them into the reported figures."""

    lips: LipSyncCounts = field(default_factory=LipSyncCounts)
    lve: list[float] = field(default_factory=list)
    fdd: list[float] = field(default_factory=list)
    generated: list[str] = field(default_factory=list)
    references: list[list[str]] = field(default_factory=list)
    emotions: list[str] = field(default_factory=list)
    clips: int = 0

    def summary(self) -> dict:
        out = {"clips": self.clips, "text_clips": len(self.generated), **self.lips.as_dict(),
               "lve_mm": _mean(self.lve), "fdd_mm": _mean(self.fdd)}
        if self.generated:
            out.update(bleu1=bleu(self.generated, self.references, 1), bleu4=bleu(self.generated, self.references, 4),
                       rouge_l=rouge_l(self.generated, self.references),
                       emotion_accuracy=emotion_accuracy(self.generated, self.emotions),
                       malformed=sum(not well_formed(g) for g in self.generated))
        return out


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _phones(clip) -> list[Segment]:
    return [Segment(label, start, end) for label, start, end in clip.phones or []]


def _subset(clip) -> str:
    return SUBSETS.get(clip.meta.get("source", ""), "other")


def _subsets(clip) -> tuple[str, ...]:
    """The clip's subset, and for real recordings also ``real_<language>`` (``real_en``, ``real_it``)."""
    subset = _subset(clip)
    language = clip.meta.get("language")
    return (subset, f"{subset}_{language}") if subset == "real" and language else (subset,)


def evaluate_corpus(clips, pipe=None, inferred: bool = False, follow_clips: int = 2, diversity_clips: int = 4,
                    seeds: int = 5, progress=None, geometry: HeadGeometry | None = None, text_clips: int | None = None) -> dict:
    """The protocol over ``clips`` (``ClipRecord``s). With ``pipe`` None, the clips' own motions are scored.

    Stage 1 (an LLM, the slow part on a CPU) runs on ``text_clips`` clips spread
    evenly over the list (None: all); with ``inferred`` it runs on every clip.
    """
    if not clips:
        raise ValueError("no clips to evaluate")
    geometry = geometry or default_geometry()
    n_text = len(clips) if inferred or text_clips is None else min(text_clips, len(clips))
    with_text = set(np.unique(np.round(np.linspace(0, len(clips) - 1, n_text)).astype(int)).tolist()) if n_text else set()
    say = progress or (lambda text: None)
    tallies: dict[str, Tally] = {"all": Tally()}
    teacher_lips = LipSyncCounts()
    seal_sources: dict[str, int] = {}
    started = time.perf_counter()
    for i, clip in enumerate(clips):
        if not clip.phones:
            raise ValueError(f"clip {clip.id} has no phone alignment in its json")
        phones = _phones(clip)
        truth = clip.motion()
        teacher_lips += lip_scores(geometry, truth, phones)
        for key in ("all", *_subsets(clip)):
            tallies.setdefault(key, Tally()).clips += 1
        if pipe is None:
            motion, text = truth, None
        else:
            from ..audio import load_audio

            audio = load_audio(clip.wav)
            text = pipe.analyze(audio).instruction if i in with_text else None
            instruction = text if inferred else clip.instructions[0]
            synthesis = pipe.synthesize(audio, instruction, seed=0)
            motion = synthesis.motion
            if synthesis.lips is not None:
                seal_sources[synthesis.lips.source] = seal_sources.get(synthesis.lips.source, 0) + 1
        if motion.fps != truth.fps:
            motion = resample(motion, truth.fps)
        lips = lip_scores(geometry, motion, phones)
        gen_v, true_v = geometry.vertices(motion), geometry.vertices(truth)
        lve = lip_vertex_error(geometry.group(gen_v, "lips"), geometry.group(true_v, "lips"))
        fdd = face_dynamics_deviation(geometry.group(gen_v, "upper_face"), geometry.group(true_v, "upper_face"),
                                      geometry.rest[geometry.groups["upper_face"]])
        for key in ("all", *_subsets(clip)):
            t = tallies[key]
            t.lips += lips
            t.lve.append(lve)
            t.fdd.append(fdd)
            if text is not None and clip.emotion is not None:
                t.generated.append(text)
                t.references.append(clip.instructions)
                t.emotions.append(clip.emotion)
        say(f"clip {i + 1}/{len(clips)} {clip.id}: F1 so far {tallies['all'].lips.f1}")

    report = tallies.pop("all").summary()
    report["subsets"] = {name: t.summary() for name, t in sorted(tallies.items())}
    report["teacher"] = teacher_lips.as_dict()
    report["closed_gap_mm"] = geometry.closed_gap_mm
    report["mode"] = "teacher" if pipe is None else ("inferred" if inferred else "reference") + " instructions"
    if pipe is not None:
        report["lip_seal"] = {"on": pipe.config.lip_seal, "timed_by": seal_sources}

    held_out = [c for c in clips if c.emotion is not None]
    report.update(instruction_following_report(pipe, held_out, follow_clips, say))
    report["diversity"] = diversity_report(pipe, held_out, diversity_clips, seeds, geometry, say)
    report["seconds"] = round(time.perf_counter() - started, 2)
    return report


def instruction_following_report(pipe, clips, per_instruction: int, say) -> dict:
    """Accuracy of the emotion classifier on motions made from the follow-set instructions on held-out audio.

    Without a pipeline (teacher mode), the clips' own motions are classified against their emotion labels.
    """
    if pipe is None:
        hits = [emotion.classify(c.motion().expression) == c.emotion for c in clips]
        return {"instruction_following": _rate(hits), "instruction_following_runs": len(hits)}
    from ..audio import load_audio

    cycle = itertools.cycle(clips)
    hits, hits_unseen, per_emotion = [], [], {}
    for target, text in follow_set():
        for _ in range(per_instruction):
            clip = next(cycle)
            motion = pipe.synthesize(load_audio(clip.wav), text, seed=0).motion
            ok = emotion.classify(motion.expression) == target
            hits.append(ok)
            per_emotion.setdefault(target, []).append(ok)
            if unseen(text):
                hits_unseen.append(ok)
        say(f"follow {target}: {text!r}")
    return {"instruction_following": _rate(hits), "instruction_following_unseen": _rate(hits_unseen),
            "instruction_following_by_emotion": {e: _rate(v) for e, v in per_emotion.items()},
            "instruction_following_runs": len(hits)}


def diversity_report(pipe, clips, n_clips: int, seeds: int, geometry: HeadGeometry, say) -> dict | None:
    """Paper Table 4: for one audio and instruction, the mean pairwise distance over seeds.

    ``style``: L2 between the prior's style features (the paper's definition);
    ``vertex_mm``: mean per-vertex L2 between the motions (lips and upper face);
    ``emotion_kept``: share of seeds whose motion still shows the clip's emotion.
    """
    if pipe is None or n_clips == 0:
        return None
    if seeds < 2:
        raise ValueError("diversity needs at least 2 seeds")
    import torch

    from ..audio import load_audio

    chosen = sorted(clips, key=lambda c: c.emotion == "neutral")[:n_clips]  # emotional clips first
    styles, vertex, kept = [], [], []
    for clip in chosen:
        audio = load_audio(clip.wav)
        instruction = clip.instructions[0]
        with torch.no_grad():
            text_emb = pipe.text_encoder.encode([instruction]).float()  # (1, D)
            feats = [pipe.stage2.sample_style(text_emb, seed=s).float().reshape(-1).cpu().numpy() for s in range(seeds)]
        motions = [pipe.synthesize(audio, instruction, seed=s).motion for s in range(seeds)]
        verts = [geometry.vertices(m) for m in motions]
        for a, b in itertools.combinations(range(seeds), 2):
            styles.append(float(np.linalg.norm(feats[a] - feats[b])))
            n = min(len(verts[a]), len(verts[b]))
            vertex.append(float(np.linalg.norm(verts[a][:n] - verts[b][:n], axis=2).mean()))
        kept += [emotion.classify(m.expression) == clip.emotion for m in motions]
        say(f"diversity {clip.id}")
    return {"style": _mean(styles), "vertex_mm": _mean(vertex), "emotion_kept": _rate(kept),
            "clips": len(chosen), "seeds": seeds}


def _rate(hits: list[bool]) -> float | None:
    return float(np.mean(hits)) if hits else None


# ---------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m backend evaluate", description=__doc__.split("\n")[0])
    p.add_argument("--corpus", default=DEFAULT_CORPUS, help=f"built corpus folder (default {DEFAULT_CORPUS})")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--limit", type=int, help="evaluate at most N clips of the split")
    p.add_argument("--teacher", action="store_true", help="score the corpus's own motions instead of generating (no weights needed)")
    p.add_argument("--inferred", action="store_true", help="drive stage 2 with stage 1's instruction instead of the reference one")
    p.add_argument("--text-clips", type=int, default=40,
                   help="clips (spread over the split) on which stage 1 writes an instruction for BLEU/ROUGE (default 40; stage 1 is slow on a CPU)")
    p.add_argument("--follow-clips", type=int, default=2, help="held-out clips per follow-set instruction (default 2)")
    p.add_argument("--diversity-clips", type=int, default=4, help="clips for the diversity test (default 4; 0 skips it)")
    p.add_argument("--seeds", type=int, default=5, help="seeds per clip for the diversity test (default 5)")
    p.add_argument("--acted", action="store_true",
                   help="add the real acted speech section (Hedgewars packs, leave one pack out; hedgewars-data); alone when the corpus is not built")
    p.add_argument("--acted-cache", default="data/affect", help="feature cache of the acted section (default %(default)s)")
    p.add_argument("--audio", help="score one audio file: generate from it alone (or, with --motion, score that motion)")
    p.add_argument("--transcript", help="what --audio says (used only to align the audio for scoring)")
    p.add_argument("--language", default="en", help="language of --transcript for the alignment (default en)")
    p.add_argument("--motion", help="score this motion file against --audio and --transcript")
    p.add_argument("--seed", type=int, default=0, help="seed for --audio generation")
    add_pipeline_options(p)
    p.add_argument("--json", help="also write the figures to this JSON file")
    p.add_argument("-v", "--verbose", action="store_true", help="print progress per clip")
    return p


def _pipeline(args):
    from ..pipeline import Pipeline

    return Pipeline(pipeline_config(args))


def _check_args(args) -> None:
    if args.motion and not args.audio:
        raise RequestError("--motion needs --audio (and --transcript): the audio to score the motion against")
    if args.audio and not args.transcript:
        raise RequestError("--audio needs --transcript: it aligns the audio to find the bilabial phones")
    if args.transcript and not args.audio:
        raise RequestError("--transcript needs --audio")
    for name in ("motion", "audio"):
        path = getattr(args, name)
        if path and not Path(path).is_file():
            raise RequestError(f"--{name} file not found: {path}")
    if args.limit is not None and args.limit < 1:
        raise RequestError(f"--limit must be at least 1, got {args.limit}")
    if args.follow_clips < 0 or args.diversity_clips < 0 or args.text_clips < 0:
        raise RequestError("--text-clips, --follow-clips and --diversity-clips must not be negative")
    if args.diversity_clips and args.seeds < 2:
        raise RequestError(f"--seeds must be at least 2 for the diversity test, got {args.seeds}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _check_args(args)
    say = (lambda text: print(text, flush=True)) if args.verbose else None
    if args.motion:
        report = score_motion(args.motion, args.audio, args.transcript, args.language)
    elif args.audio:
        report = score_audio(_pipeline(args), args.audio, args.transcript, args.language, args.seed)
    elif args.acted and not Path(args.corpus).is_dir():
        report = {}
    else:
        from ..corpus.dataset import load_corpus

        clips = load_corpus(args.corpus, split=args.split)
        if not clips:
            raise RequestError(f"no '{args.split}' clips in {args.corpus}")
        clips = clips[: args.limit] if args.limit else clips
        pipe = None if args.teacher else _pipeline(args)
        report = evaluate_corpus(clips, pipe, args.inferred, args.follow_clips, args.diversity_clips, args.seeds, say,
                                 text_clips=args.text_clips)
        report["split"] = args.split
        if pipe is not None:
            report["describe_samples"] = pipe.config.describe_samples
    if args.acted:
        from .acted import acted_report, format_acted

        report["acted"] = acted_report(args.acted_cache, say=say)
    print(format_table({k: v for k, v in report.items() if k != "acted"}))
    if args.acted:
        print(format_acted(report["acted"]))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


# ---------------------------------------------------------------- table

ROWS = ("clips", "lip_closure_f1", "lip_closure_precision", "lip_closure_recall", "vowel_open_rate", "lve_mm", "fdd_mm",
        "bleu1", "bleu4", "rouge_l", "emotion_accuracy", "malformed")


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def format_table(report: dict) -> str:
    """The report as aligned text: corpus figures by subset, then the single figures."""
    lines = []
    if "subsets" in report:
        columns = {"all": report, **report["subsets"], "teacher": report.get("teacher", {})}
        lines.append(f"{'':34}" + "".join(f"{name:>10}" for name in columns))
        for row in ROWS:
            if any(row in col for col in columns.values()):
                lines.append(f"{row:34}" + "".join(f"{_fmt(col.get(row)):>10}" for col in columns.values()))
        lines.append("")
    for key, value in report.items():
        if key in ("subsets", "teacher") or ("subsets" in report and key in ROWS):
            continue
        if isinstance(value, dict):
            value = ", ".join(f"{k} {_fmt(v)}" for k, v in value.items())
        lines.append(f"{key:34}{_fmt(value)}")
    return "\n".join(lines)

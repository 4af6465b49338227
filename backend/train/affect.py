"""Train the affect reader (``backend/stage1/affect.py``) and score it leave-one-pack-out.

    python -m backend.train.affect features --cache data/affect      # speech, cues and words of every clip (minutes)
    python -m backend.train.affect lopo --cache data/affect          # leave-one-pack-out figures on the real acted lines
    python -m backend.train.affect train --cache data/affect         # the shipped head: backend/weights/affect.safetensors

Clips: synthetic espeak-ng lines with emotional prosody (``corpus.speech``: training voices, and the
held-out voices as the synthetic test set), the Hedgewars packs we may use with their weak labels
(``corpus.acted``), and the Asterisk prompts (read speech, neutral; a female English and a male
Italian voice: the speaker's sex). Every clip's pooled speech features, cues and words are cached in
one ``.npz`` per source, so training takes seconds.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from ..stage1.affect import EMOTIONS, Affect, AffectConfig, WORD_PROTOTYPES, read_words, pool, save_affect
from ..stage1.cues import cues

log = logging.getLogger(__name__)

FPS = 25.0
SYNTH_PER_EMOTION = {"train": 70, "test": 20}
ASTERISK_PER_VOICE = 160
SOURCE_WEIGHT = {"synthetic": 1.0, "acted": 1.0, "acted_untrusted": 0.5, "asterisk": 0.5}
STEPS, LR, BATCH = 1500, 2e-3, 64


# ---------------------------------------------------------------- clips


def synthetic_clips(split: str, seed: int = 0) -> list[dict]:
    """espeak-ng lines: (samples, words, emotion, effort, sex, group) for one split's voices."""
    from ..corpus.sentences import EMOTIONAL
    from ..corpus.speech import INTENSITIES, emotion_prosody, synthesize, voices

    rng = np.random.default_rng(seed + (split == "test"))
    bank = [v for v in voices() if v.heldout == (split == "test")]
    out = []
    for emotion in EMOTIONS:
        for k in range(SYNTH_PER_EMOTION[split]):
            voice = bank[int(rng.integers(len(bank)))]
            intensity = INTENSITIES[int(rng.integers(3))] if emotion != "neutral" else "moderate"
            prosody, p_emph = emotion_prosody(emotion, intensity, rng)
            text = str(rng.choice(EMOTIONAL[emotion]))
            if rng.random() < p_emph:
                prosody.emphasis = int(rng.integers(len(text.split())))
            effort = 1.0 if emotion == "neutral" else {"slight": 1.0, "moderate": 1.3, "strong": 1.7}[intensity]
            out.append({"samples": synthesize(text, voice, prosody), "words": text, "emotion": emotion, "effort": effort,
                        "sex": voice.gender, "group": f"espeak/{voice.name}", "weight": SOURCE_WEIGHT["synthetic"]})
    return out


def acted_clips() -> list[dict]:
    from ..audio import AudioError, load_audio
    from ..corpus.acted import acted_lines

    out = []
    for line in acted_lines():
        try:
            samples = load_audio(line.path).samples
        except AudioError as exc:
            log.info("skipped %s: %s", line.path, exc)
            continue
        out.append({"samples": samples, "words": None, "emotion": line.emotion, "effort": float(line.effort), "sex": None,
                    "group": line.pack, "event": line.event, "trusted": line.trusted,
                    "weight": SOURCE_WEIGHT["acted" if line.trusted else "acted_untrusted"]})
    return out


def asterisk_clips(seed: int = 0, more: bool = False) -> list[dict]:
    """Asterisk prompts (neutral read speech) of the corpus's two voices, or (``more``) of the French and
    Russian voices (when their Debian packages are installed)."""
    from ..corpus.speech import _ASTERISK_SETS, MORE_ASTERISK_SETS, load_recording, real_recordings

    rng = np.random.default_rng(seed)
    sets = MORE_ASTERISK_SETS if more else _ASTERISK_SETS
    recordings = real_recordings(sets=sets)
    out = []
    for speaker in sorted({r.speaker for r in recordings}):
        recs = [r for r in recordings if r.speaker == speaker]
        for i in rng.permutation(len(recs))[:ASTERISK_PER_VOICE]:
            r = recs[int(i)]
            out.append({"samples": load_recording(r), "words": None, "emotion": "neutral", "effort": 1.0, "sex": r.gender,
                        "group": f"asterisk/{speaker}", "language": r.language, "weight": SOURCE_WEIGHT["asterisk"]})
    return out


# ---------------------------------------------------------------- features


def extract(clips: list[dict], out: Path) -> None:
    """Pooled speech, cues and (recognised, when not given) words of every clip -> ``out`` (.npz)."""
    from ..language.text import load_text_encoder
    from ..speech import load_encoder
    from ..speech.asr import Transcriber, chunks, trusted_words
    from ..speech.lips import MAX_NO_SPEECH, MIN_SCORE

    encoder, minilm, transcriber = load_encoder("whisper-tiny.en"), load_text_encoder(), None
    prototypes = [F.normalize(minilm.encode(list(WORD_PROTOTYPES[e])).float(), dim=-1) for e in EMOTIONS]
    pooled, cue_rows, words = [], [], []
    started = time.perf_counter()
    for i, clip in enumerate(clips):
        samples = torch.from_numpy(clip["samples"])
        with torch.no_grad():
            feats, windows = encoder.features_over(samples, chunks(clip["samples"]), FPS)  # (T, 384), (chunks, 1500, 384)
        pooled.append(pool(feats.float()[None])[0].numpy())
        cue_rows.append(cues(clip["samples"]))
        said = clip["words"]
        if said is None:
            if clip.get("language", "en") != "en":
                said = ""
            else:
                transcriber = transcriber or Transcriber()
                heard = transcriber.transcribe(clip["samples"], windows.numpy())
                said = trusted_words(heard, MIN_SCORE, MAX_NO_SPEECH)
        words.append(said)
        if i % 50 == 0:
            log.info("%s: %d/%d clips, %.0f s", out.name, i, len(clips), time.perf_counter() - started)
    word_rows = read_words(minilm, prototypes, words).numpy()
    meta = [{k: v for k, v in c.items() if k != "samples"} for c in clips]
    for m, w in zip(meta, words):
        m["words"] = w
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, pooled=np.stack(pooled), cues=np.stack(cue_rows), words=word_rows, meta=json.dumps(meta))


def load_set(path: Path) -> dict:
    data = np.load(path)
    meta = json.loads(str(data["meta"]))
    return {"pooled": data["pooled"], "cues": data["cues"], "words": data["words"], "meta": meta}


def concat(*sets: dict) -> dict:
    return {"pooled": np.concatenate([s["pooled"] for s in sets]), "cues": np.concatenate([s["cues"] for s in sets]),
            "words": np.concatenate([s["words"] for s in sets]), "meta": [m for s in sets for m in s["meta"]]}


def subset(data: dict, keep: np.ndarray) -> dict:
    idx = np.flatnonzero(keep)
    return {"pooled": data["pooled"][idx], "cues": data["cues"][idx], "words": data["words"][idx],
            "meta": [data["meta"][i] for i in idx]}


# ---------------------------------------------------------------- training


def fit(data: dict, config: AffectConfig | None = None, steps: int = STEPS, seed: int = 0) -> Affect:
    """Train one head on ``data``: emotion cross entropy (weighted by source, classes balanced), effort
    regression and sex (where known)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a head this small runs many times faster on one thread than on contended ones
    try:
        return _fit(data, config, steps, seed)
    finally:
        torch.set_num_threads(threads)


def _fit(data: dict, config: AffectConfig | None, steps: int, seed: int) -> Affect:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = Affect(config or AffectConfig())
    cue_rows = torch.from_numpy(data["cues"]).float()
    model.cue_mean.copy_(cue_rows.mean(0))
    model.cue_std.copy_(cue_rows.std(0).clamp_min(1e-3))
    pooled, words = torch.from_numpy(data["pooled"]).float(), torch.from_numpy(data["words"]).float()
    meta = data["meta"]
    label = torch.tensor([EMOTIONS.index(m["emotion"]) for m in meta])
    effort = torch.tensor([m["effort"] for m in meta]).float()
    sex = torch.tensor([{"female": 1.0, "male": 0.0}.get(m["sex"], -1.0) for m in meta])
    weight = torch.tensor([m["weight"] for m in meta]).float()
    counts = torch.bincount(label, minlength=len(EMOTIONS)).float()
    class_w = (counts.sum() / (len(EMOTIONS) * counts.clamp_min(1))) ** 0.5  # (8,) softened balance
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, LR, total_steps=steps)
    model.train()
    n = len(meta)
    for _ in range(steps):
        b = torch.from_numpy(rng.integers(0, n, min(BATCH, n)))
        noisy = pooled[b] + 0.1 * torch.randn_like(pooled[b]) * pooled[b].std(0, keepdim=True)
        w_drop = (torch.rand(len(b), 1) < 0.3).float()  # sometimes no words: the speech must carry it
        logits, eff, sx = model(noisy, cue_rows[b], words[b] * (1 - w_drop))
        w = weight[b] * class_w[label[b]]
        loss = (F.cross_entropy(logits, label[b], reduction="none") * w).sum() / w.sum()
        loss = loss + 0.5 * F.mse_loss(eff, effort[b])
        known = sex[b] >= 0
        if known.any():
            loss = loss + 0.5 * F.binary_cross_entropy_with_logits(sx[known], sex[b][known])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    model.requires_grad_(False)
    return model


def predict(model: Affect, data: dict) -> list:
    """The model's ``Reading`` of every clip."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = []
        for i in range(len(data["meta"])):
            row = lambda k: torch.from_numpy(data[k][i : i + 1]).float()  # noqa: E731
            out.append(model.decide(row("pooled"), row("cues"), row("words")))
        return out
    finally:
        torch.set_num_threads(threads)


def scores(readings, meta) -> dict:
    """Emotion accuracy on emotional lines, emotional lines called neutral or uncertain, neutral kept,
    a confusion matrix (rows: label, columns: decision, 'uncertain' last) and sex figures."""
    named = [r.emotion or "uncertain" for r in readings]
    emo = [i for i, m in enumerate(meta) if m["emotion"] != "neutral"]
    neu = [i for i, m in enumerate(meta) if m["emotion"] == "neutral"]
    columns = list(EMOTIONS) + ["uncertain"]
    confusion = {e: {c: 0 for c in columns} for e in EMOTIONS if any(m["emotion"] == e for m in meta)}
    for n, m in zip(named, meta):
        confusion[m["emotion"]][n] += 1
    rate = lambda hits: float(np.mean(hits)) if hits else None  # noqa: E731
    sexed = [(r, m) for r, m in zip(readings, meta) if m.get("sex")]
    return {
        "lines": len(meta), "emotional_lines": len(emo), "neutral_lines": len(neu),
        "emotion_accuracy": rate([named[i] == meta[i]["emotion"] for i in emo]),
        "emotional_called_neutral": rate([named[i] == "neutral" for i in emo]),
        "emotional_uncertain": rate([named[i] == "uncertain" for i in emo]),
        "neutral_kept": rate([named[i] == "neutral" for i in neu]),
        "accuracy_all": rate([n == m["emotion"] for n, m in zip(named, meta)]),
        "sex_right_or_person": rate([r.sex in (None, m["sex"]) for r, m in sexed]),
        "sex_named_wrong": rate([r.sex not in (None, m["sex"]) for r, m in sexed]),
        "sex_named": rate([r.sex is not None for r, _ in sexed]),
        "confusion": confusion,
    }


def leave_one_group_out(data: dict, groups: list[str], steps: int = STEPS, trusted_only: bool = True) -> dict:
    """For each group (a pack, an Asterisk voice): train on every other clip, score that group's lines
    (trusted labels only, by default). Returns pooled scores and per-group emotion accuracy."""
    readings, metas, per_group = [], [], {}
    for g in groups:
        held = np.array([m["group"] == g for m in data["meta"]])
        model = fit(subset(data, ~held), steps=steps)
        test = subset(data, held & np.array([m.get("trusted", True) or not trusted_only for m in data["meta"]]))
        r = predict(model, test)
        readings += r
        metas += test["meta"]
        per_group[g] = scores(r, test["meta"])["accuracy_all"]
        log.info("held out %s: accuracy %.3f on %d lines", g, per_group[g], len(test["meta"]))
    out = scores(readings, metas)
    out["per_group_accuracy"] = per_group
    return out


def all_sets(cache: Path) -> dict:
    return {name: load_set(cache / f"{name}.npz") for name in ("synthetic_train", "synthetic_test", "acted", "asterisk", "asterisk_more")
            if (cache / f"{name}.npz").is_file()}


def training_set(sets: dict) -> dict:
    """Everything the shipped reader learns from: synthetic training voices, the acted packs, the Asterisk voices."""
    return concat(*(sets[k] for k in ("synthetic_train", "acted", "asterisk", "asterisk_more") if k in sets))


def real_voices(data: dict) -> list[str]:
    """The groups of real read speech with a known sex (the Asterisk voices)."""
    return sorted({m["group"] for m in data["meta"] if m["group"].startswith("asterisk/")})


# ---------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m backend.train.affect", description=__doc__.split("\n")[0])
    p.add_argument("command", choices=("features", "lopo", "train"))
    p.add_argument("--cache", default="data/affect", help="folder of the cached features (default %(default)s)")
    p.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "weights" / "affect.safetensors"))
    p.add_argument("--steps", type=int, default=STEPS)
    p.add_argument("--json", help="write the figures here too")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cache = Path(args.cache)
    if args.command == "features":
        makers = {"acted": acted_clips, "asterisk": asterisk_clips, "asterisk_more": lambda: asterisk_clips(more=True), "synthetic_test": lambda: synthetic_clips("test"),
                  "synthetic_train": lambda: synthetic_clips("train")}
        for name, make in makers.items():
            if not (cache / f"{name}.npz").is_file():
                extract(make(), cache / f"{name}.npz")
        return 0
    sets = all_sets(cache)
    train = training_set(sets)
    if args.command == "lopo":
        from ..corpus.acted import PACKS

        report = {"acted_leave_one_pack_out": leave_one_group_out(train, list(PACKS), steps=args.steps),
                  "asterisk_leave_one_voice_out": leave_one_group_out(train, real_voices(train), steps=args.steps)}
        model = fit(train, steps=args.steps)
        report["synthetic_heldout_voices"] = scores(predict(model, sets["synthetic_test"]), sets["synthetic_test"]["meta"])
    else:
        model = fit(train, steps=args.steps)
        save_affect(args.out, model, extra={"trained": True, "clips": len(train["meta"]), "steps": args.steps})
        report = {"written": args.out, "synthetic_heldout_voices": scores(predict(model, sets["synthetic_test"]), sets["synthetic_test"]["meta"])}
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

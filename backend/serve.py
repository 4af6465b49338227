"""``python -m backend serve``: the pipeline behind a JSON-lines protocol.

One JSON object per line on stdin (requests) and stdout (messages); logs go to
a file, never to stdout. The protocol is documented in docs/architecture.md.
Requests run one at a time in a worker thread, so the reader stays free to
take ``cancel`` and ``shutdown`` while a request runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import queue
import sys
import tempfile
import threading
import traceback
from pathlib import Path

from . import __version__
from .pipeline import Cancelled

PROTOCOL = 1
log = logging.getLogger("avitalk.serve")


class RequestError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class Server:
    def __init__(self, out, config=None, motion_dir: Path | None = None):
        self.out = out
        self.config = config
        self.motion_dir = motion_dir or Path(tempfile.gettempdir()) / "avitalk_motion"
        self.pipeline = None
        self.jobs: queue.Queue = queue.Queue()
        self.cancelled: set[str] = set()
        self.current: str | None = None
        self.lock = threading.Lock()       # guards cancelled/current
        self.out_lock = threading.Lock()   # one message per line, whole
        self.closing = threading.Event()

    # ---- output ---------------------------------------------------------------------

    def send(self, message: dict) -> None:
        line = json.dumps(message, ensure_ascii=False)
        with self.out_lock:
            try:
                self.out.write(line + "\n")
                self.out.flush()
            except (BrokenPipeError, ValueError):  # Blender went away
                self.closing.set()

    # ---- reader (main thread) -----------------------------------------------------

    def read(self, stream) -> None:
        self.send({"type": "ready", "protocol": PROTOCOL, "version": __version__, "pid": os.getpid()})
        worker = threading.Thread(target=self.work, name="avitalk-worker", daemon=True)
        worker.start()
        for line in stream:
            line = line.strip()
            if not line:
                continue
            try:
                request = json.loads(line)
                if not isinstance(request, dict) or not isinstance(request.get("type"), str):
                    raise ValueError("a request is a JSON object with a 'type'")
            except ValueError as exc:
                self.send({"type": "error", "id": None, "code": "bad_request", "message": f"unreadable request: {exc}"})
                continue
            kind = request["type"]
            if kind == "cancel":
                target = request.get("target")
                with self.lock:
                    self.cancelled.add(target)
                log.info("cancel %s", target)
            elif kind == "shutdown":
                break
            else:
                self.jobs.put(request)
        # stdin closed or shutdown: stop the running request and leave.
        self.closing.set()
        with self.lock:
            if self.current:
                self.cancelled.add(self.current)
        self.jobs.put(None)
        worker.join(timeout=30)
        self.send({"type": "bye"})

    # ---- worker ---------------------------------------------------------------------

    def work(self) -> None:
        while True:
            request = self.jobs.get()
            if request is None:
                return
            rid = request.get("id")
            with self.lock:
                skip = rid in self.cancelled
                self.cancelled.discard(rid)
                self.current = None if skip else rid
            if skip:
                self.send({"type": "cancelled", "id": rid})
                continue
            try:
                result = self.handle(request)
                self.send({"type": "result", "id": rid, **result})
            except Cancelled:
                self.send({"type": "cancelled", "id": rid})
            except RequestError as exc:
                self.send({"type": "error", "id": rid, "code": exc.code, "message": str(exc)})
            except Exception as exc:  # a bug must not kill the server; report it and go on
                log.error("request %s failed:\n%s", rid, traceback.format_exc())
                self.send({"type": "error", "id": rid, "code": "internal", "message": f"{type(exc).__name__}: {exc}"})
            finally:
                with self.lock:
                    self.current = None
                    self.cancelled.discard(rid)

    def progress_for(self, rid):
        def progress(stage: str, fraction: float) -> None:
            with self.lock:
                stop = rid in self.cancelled or self.closing.is_set()
            if stop:
                raise Cancelled()
            self.send({"type": "progress", "id": rid, "stage": stage, "fraction": round(float(fraction), 3)})

        return progress

    def load_pipeline(self, progress):
        if self.pipeline is None:
            from .pipeline import Pipeline, PipelineConfig, PipelineError

            progress("loading", 0.0)
            try:
                self.pipeline = Pipeline(self.config or PipelineConfig())
            except PipelineError as exc:
                raise RequestError("no_weights", str(exc)) from exc
            except (OSError, RuntimeError, ValueError) as exc:
                raise RequestError("model_error", f"the models could not be loaded: {exc}") from exc
            progress("loading", 1.0)
        return self.pipeline

    def handle(self, request: dict) -> dict:
        kind, rid = request["type"], request.get("id")
        progress = self.progress_for(rid)
        if kind == "check":
            return self.check(progress)
        if kind not in ("analyze", "generate", "synthesize"):
            raise RequestError("bad_request", f"unknown request type '{kind}'")
        pipe = self.load_pipeline(progress)
        audio = self.audio(request)
        cached = pipe.is_cached(audio)
        transcript, language = request.get("transcript"), request.get("language", "en")
        if not isinstance(transcript, (str, type(None))) or not isinstance(language, str):
            raise RequestError("bad_request", "'transcript' and 'language' must be text")
        if kind == "analyze":
            text = pipe.analyze(audio, progress, transcript, language)
            return {"instruction": text, "timings": pipe.last_timings, "features_cached": cached}
        instruction = request.get("instruction")
        if kind == "synthesize" and not instruction:
            raise RequestError("bad_instruction", "regenerate needs an instruction")
        controls = self.controls(request.get("controls"))
        seed = request.get("seed", 0)
        if not isinstance(seed, int):
            raise RequestError("bad_request", f"seed must be an integer, got {seed!r}")
        try:
            result = pipe.generate(audio, instruction=instruction or None, seed=seed, controls=controls, progress=progress,
                                   transcript=transcript, language=language)
        except ValueError as exc:
            raise RequestError("bad_instruction", str(exc)) from exc
        if request.get("output"):
            output = Path(request["output"])
        else:
            self.motion_dir.mkdir(parents=True, exist_ok=True)
            output = self.motion_dir / f"{rid or 'motion'}.npz"
        from .motion import save_motion

        save_motion(output, result.motion)
        return {
            "motion": str(output),
            "instruction": result.instruction,
            "inferred": result.inferred,
            "seed": seed,
            "frames": result.motion.n_frames,
            "fps": result.motion.fps,
            "timings": result.timings,
            "features_cached": cached,
            "stage1_ran": result.inferred,
            "lip_seal": result.lips.as_dict() if result.lips else None,
            "warnings": audio.warnings,
        }

    def audio(self, request: dict):
        from .audio import AudioError, load_audio

        path = request.get("audio")
        if not isinstance(path, str) or not path:
            raise RequestError("bad_request", "the request has no 'audio' path")
        try:
            return load_audio(path)
        except AudioError as exc:
            raise RequestError("bad_audio", str(exc)) from exc

    def controls(self, values):
        from .refine.controls import MotionControls

        if values is None:
            return None
        if not isinstance(values, dict):
            raise RequestError("bad_request", "'controls' must be an object")
        try:
            return MotionControls(**values)
        except (TypeError, ValueError) as exc:
            raise RequestError("bad_request", f"bad controls: {exc}") from exc

    def check(self, progress) -> dict:
        import numpy
        import torch

        info = {"version": __version__, "python": sys.version.split()[0], "torch": torch.__version__,
                "numpy": numpy.__version__, "cuda_available": torch.cuda.is_available()}
        if torch.cuda.is_available():
            info["cuda_device"] = torch.cuda.get_device_name(0)
        try:
            pipe = self.load_pipeline(progress)
            info.update(pipe.describe())
            info["models_ok"] = True
        except RequestError as exc:
            info.update({"models_ok": False, "models_error": str(exc)})
        return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend serve")
    parser.add_argument("--checkpoint")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--speech-model")
    parser.add_argument("--content-model")
    parser.add_argument("--llm")
    parser.add_argument("--log", default=str(Path(tempfile.gettempdir()) / "avitalk_backend.log"))
    parser.add_argument("--motion-dir", help="where motion files go when a request names no output")
    args = parser.parse_args(argv)
    logging.basicConfig(filename=args.log, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    from .pipeline import PipelineConfig

    config = PipelineConfig(checkpoint_dir=args.checkpoint, device=args.device, speech_path=args.speech_model,
                            content_path=args.content_model, llm_path=args.llm)
    protocol_out = sys.stdout
    sys.stdout = sys.stderr  # stray prints from libraries must not corrupt the protocol
    server = Server(protocol_out, config, Path(args.motion_dir) if args.motion_dir else None)
    log.info("serve start pid=%s", os.getpid())
    server.read(sys.stdin)
    log.info("serve stop")
    return 0

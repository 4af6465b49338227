"""``python -m backend serve``: the pipeline behind a JSON-lines protocol (``backend.protocol``).

One JSON object per line on stdin (requests) and stdout (messages); logs go to
a file, never to stdout. The protocol is documented in docs/architecture.md.
Requests run one at a time in a worker thread, so the reader stays free to
take ``cancel`` and ``shutdown`` while a request runs. Every field is checked
here, at the boundary; errors of the project's family answer with their code,
anything else is a bug, answered ``internal`` with the log's path.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import queue
import re
import secrets
import sys
import tempfile
import threading
import traceback
from pathlib import Path

from . import __version__
from . import protocol as P
from .errors import AviTalkError, Cancelled, RequestError, excerpt

log = logging.getLogger("avitalk.serve")

MAX_LINE = 1 << 20        # bytes of one request line; longer lines are refused unread
MAX_ID = 200              # characters of a request id
MAX_PATH = 4096           # characters of a file path
MAX_LANGUAGE = 16
READ_CHUNK = 1 << 16


def _text(request: dict, name: str, limit: int, required: bool = False) -> str | None:
    value = request.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise RequestError(f"'{name}' must be text, got {excerpt(value)}")
    if len(value) > limit:
        raise RequestError(f"'{name}' is {len(value)} characters long; at most {limit}")
    if "\0" in value:
        raise RequestError(f"'{name}' holds a NUL character")
    return value


def _seed(request: dict) -> int:
    seed = request.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= P.MAX_SEED:
        raise RequestError(f"'seed' must be a whole number from 0 to {P.MAX_SEED}, got {excerpt(seed)}")
    return seed


def _controls(values):
    if values is None:
        return None
    from .refine.controls import MotionControls

    return MotionControls.from_dict(values)


class Server:
    def __init__(self, out, config=None, motion_dir: Path | None = None, log_path: str | None = None):
        self.out = out
        self.config = config
        self.motion_dir = motion_dir      # None: a private folder, made on first use
        self.log_path = log_path
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

    def error(self, rid, exc: AviTalkError) -> None:
        self.send({"type": P.ERROR, "id": rid, "code": exc.code, "message": str(exc)})

    # ---- reader (main thread) -----------------------------------------------------

    def lines(self, stream):
        """Request lines; a line over ``MAX_LINE`` is skipped unread and yields None."""
        while True:
            line = stream.readline(MAX_LINE + 1)
            if not line:
                return
            if len(line) > MAX_LINE and not line.endswith("\n"):
                while True:  # drop the rest of the line, a chunk at a time
                    rest = stream.readline(READ_CHUNK)
                    if not rest or rest.endswith("\n"):
                        break
                yield None
            else:
                yield line

    def read(self, stream) -> None:
        self.send({"type": P.READY, "protocol": P.VERSION, "version": __version__, "pid": os.getpid()})
        worker = threading.Thread(target=self.work, name="avitalk-worker", daemon=True)
        worker.start()
        for line in self.lines(stream):
            if line is None:
                self.error(None, RequestError(f"a request line is over {MAX_LINE} bytes; it was not read"))
                continue
            line = line.strip()
            if not line:
                continue
            try:
                request = self.parse(line)
            except RequestError as exc:
                self.error(getattr(exc, "rid", None), exc)  # the id when it is a usable one, so the client's job ends
                continue
            kind = request["type"]
            if kind == P.CANCEL:
                target = request.get("target")
                if not isinstance(target, str) or len(target) > MAX_ID:
                    rid = request.get("id") if isinstance(request.get("id"), str) else None
                    self.error(rid, RequestError(f"a cancel's 'target' must be a request id (text), got {excerpt(target)}"))
                    continue
                with self.lock:
                    self.cancelled.add(target)
                log.info("cancel %s", target)
            elif kind == P.SHUTDOWN:
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
        self.send({"type": P.BYE})

    @staticmethod
    def parse(line: str) -> dict:
        """A request object with a known 'type', and a text 'id' for the requests that do work."""
        try:
            request = json.loads(line)
        except (ValueError, RecursionError) as exc:  # json's own errors, and nesting deeper than it can read
            raise RequestError(f"unreadable request ({type(exc).__name__}): {excerpt(line)}") from None
        if not isinstance(request, dict):
            raise RequestError(f"a request is a JSON object with a 'type', got {excerpt(line)}")
        kind, rid = request.get("type"), request.get("id")
        good_id = isinstance(rid, str) and 0 < len(rid) <= MAX_ID
        if not isinstance(kind, str):
            error = RequestError(f"a request's 'type' must be one of {', '.join(P.REQUESTS)}, got {excerpt(kind)}")
            error.rid = rid if good_id else None
            raise error
        if (kind in P.WORK_REQUESTS or kind not in P.REQUESTS) and not good_id:
            raise RequestError(f"a request's 'id' must be text of 1 to {MAX_ID} characters, got {excerpt(rid)}")
        return request

    # ---- worker ---------------------------------------------------------------------

    def work(self) -> None:
        while True:
            request = self.jobs.get()
            if request is None:
                return
            rid = request["id"]
            with self.lock:
                skip = rid in self.cancelled
                self.cancelled.discard(rid)
                self.current = None if skip else rid
            if skip:
                self.send({"type": P.CANCELLED, "id": rid})
                continue
            try:
                result = self.handle(request)
                self.send({"type": P.RESULT, "id": rid, **result})
            except Cancelled:
                self.send({"type": P.CANCELLED, "id": rid})
            except AviTalkError as exc:  # the one place the family becomes a protocol error
                self.error(rid, exc)
            except Exception as exc:  # a bug: it must not kill the server; report it with the log's path
                log.error("request %s failed:\n%s", rid, traceback.format_exc())
                where = f"; details in {self.log_path}" if self.log_path else ""
                self.send({"type": P.ERROR, "id": rid, "code": P.INTERNAL,
                           "message": f"internal error {type(exc).__name__}: {excerpt(str(exc), 200)}{where}"})
            finally:
                with self.lock:
                    self.current = None
                    self.cancelled.discard(rid)

    def progress_for(self, rid):
        def progress(stage: str, fraction: float) -> None:
            with self.lock:
                stop = rid in self.cancelled or self.closing.is_set()
            if stop:
                raise Cancelled("cancelled")
            self.send({"type": P.PROGRESS, "id": rid, "stage": stage, "fraction": round(float(fraction), 3)})

        return progress

    def load_pipeline(self, progress):
        if self.pipeline is None:
            from .pipeline import Pipeline, PipelineConfig

            progress("loading", 0.0)
            self.pipeline = Pipeline(self.config or PipelineConfig())  # its errors are the family's (no_weights, model_error)
            progress("loading", 1.0)
        return self.pipeline

    def handle(self, request: dict) -> dict:
        kind, rid = request["type"], request["id"]
        progress = self.progress_for(rid)
        if kind == P.CHECK:
            return self.check(progress)
        if kind not in (P.ANALYZE, P.GENERATE, P.SYNTHESIZE):
            raise RequestError(f"unknown request type {excerpt(kind)}; the types are {', '.join(P.REQUESTS)}")
        from .pipeline import MAX_TRANSCRIPT_CHARS, check_instruction, check_output, check_transcript

        audio_path = _text(request, "audio", MAX_PATH, required=True)
        transcript = _text(request, "transcript", MAX_TRANSCRIPT_CHARS)
        language = _text(request, "language", MAX_LANGUAGE) or "en"
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", language):
            raise RequestError(f"'language' must be a language code such as en or it, got {excerpt(language)}")
        if kind != P.ANALYZE:
            instruction = request.get("instruction")
            if instruction is not None and not isinstance(instruction, str):
                raise RequestError(f"'instruction' must be text, got {excerpt(instruction)}")
            if kind == P.SYNTHESIZE and not instruction:
                raise RequestError("regenerate needs an instruction")
            if instruction:  # refused before any model loads
                instruction = check_instruction(instruction)
            seed = _seed(request)
            controls = _controls(request.get("controls"))
            output = _text(request, "output", MAX_PATH)
            if output and not os.path.isabs(output):  # the server's working folder means nothing to the client
                raise RequestError(f"'output' must be an absolute path, got {excerpt(output)}")
            output = check_output(output, audio_path) if output else None

        from .audio import load_audio

        audio = load_audio(audio_path)
        check_transcript(transcript, audio)
        pipe = self.load_pipeline(progress)
        cached = pipe.is_cached(audio)
        if kind == P.ANALYZE:
            analysis = pipe.analyze(audio, progress, transcript, language)
            return {"instruction": analysis.instruction, "words": analysis.words, "timings": analysis.timings,
                    "features_cached": cached, "warnings": analysis.warnings}
        result = pipe.generate(audio, instruction=instruction or None, seed=seed, controls=controls, progress=progress,
                               transcript=transcript, language=language)
        output = output or self.motion_path(rid)
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
            "warnings": result.warnings,
        }

    def motion_path(self, rid: str) -> Path:
        """A new file in this server's own folder: the id made safe plus a random part, so duplicate ids
        and other servers never overwrite a motion."""
        if self.motion_dir is None:
            self.motion_dir = Path(tempfile.mkdtemp(prefix="avitalk_motion_"))  # mode 0700, unguessable
        else:
            self.motion_dir.mkdir(parents=True, exist_ok=True)
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", rid)[:40].lstrip(".") or "motion"
        return self.motion_dir / f"{safe}-{secrets.token_hex(6)}.npz"

    def check(self, progress) -> dict:
        import numpy
        import torch

        info = {"version": __version__, "python": sys.version.split()[0], "torch": torch.__version__,
                "numpy": numpy.__version__, "cuda_available": torch.cuda.is_available()}
        if torch.cuda.is_available():
            info["cuda_device"] = torch.cuda.get_device_name(0)
        try:
            pipe = self.load_pipeline(progress)
        except Cancelled:
            raise
        except AviTalkError as exc:
            info.update({"models_ok": False, "models_error": str(exc), "models_code": exc.code})
        else:
            info.update(pipe.describe())
            info["models_ok"] = True
        return info


def main(argv: list[str] | None = None) -> int:
    from .options import add_pipeline_options, pipeline_config

    parser = argparse.ArgumentParser(prog="python -m backend serve")
    add_pipeline_options(parser)
    parser.add_argument("--log", default=str(Path(tempfile.gettempdir()) / "avitalk_backend.log"))
    parser.add_argument("--motion-dir", help="where motion files go when a request names no output (default: a private temporary folder)")
    args = parser.parse_args(argv)
    logging.basicConfig(filename=args.log, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    protocol_out = sys.stdout
    sys.stdout = sys.stderr  # stray prints from libraries must not corrupt the protocol
    server = Server(protocol_out, pipeline_config(args), Path(args.motion_dir) if args.motion_dir else None, args.log)
    log.info("serve start pid=%s", os.getpid())
    server.read(sys.stdin)
    log.info("serve stop")
    return 0

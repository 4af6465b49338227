"""The backend process and its JSON-lines pipe (docs/architecture.md, "Backend protocol").

``BackendProcess`` starts ``python -m backend serve`` in the backend's own
interpreter, writes requests to its stdin and has one reader thread turn each
stdout line into a dict on a queue. The server's stderr goes to the log file,
so a crash's traceback is kept. The reader thread only parses JSON and
puts it on the queue: worker threads never touch ``bpy``. Nothing here blocks
except ``start`` (which waits for nothing) and ``stop``.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from . import backend_ref
from .errors import AviTalkError

protocol = backend_ref.protocol()
DEVICES = ("auto", "cuda", "cpu")


class BackendError(AviTalkError):
    """The backend is missing, crashed, hung, or refused a request; the message is for the artist."""

    code = "backend"


@dataclass
class BackendConfig:
    """How to start the backend. Empty paths mean "the backend's default"."""

    python: str = ""                 # the backend's interpreter (has torch); never Blender's own
    backend_root: str = ""           # the folder that holds the ``backend`` package
    checkpoint: str = ""             # folder with stage1/stage2 .safetensors; empty: the shipped weights
    device: str = "auto"
    speech_model: str = ""           # local HuBERT / Whisper folder
    content_model: str = ""          # local wav2vec 2.0 folder
    llm: str = ""                    # local causal LM folder
    log: str = ""                    # the server's log; its stderr (tracebacks) is appended here too
    motion_dir: str = ""             # this Blender's private folder for motion files
    stall_timeout: float = 300.0     # seconds without any message while a request runs
    extra_env: dict = field(default_factory=dict)

    def command(self) -> list[str]:
        if not self.python:
            raise BackendError("no backend Python is set: choose it in the AVI-Talk preferences, "
                               "or create the backend environment there", "no_backend")
        if not os.path.isfile(self.python):
            raise BackendError(f"the backend Python does not exist: {self.python}", "no_backend")
        if self.device not in DEVICES:
            raise BackendError(f"device must be one of {DEVICES}, not {self.device!r}", "bad_config")
        argv = [self.python, "-u", "-m", "backend", "serve", "--device", self.device]
        for flag, value in (("--checkpoint", self.checkpoint), ("--speech-model", self.speech_model),
                            ("--content-model", self.content_model), ("--llm", self.llm), ("--log", self.log),
                            ("--motion-dir", self.motion_dir)):
            if value:
                argv += [flag, value]
        return argv


class BackendProcess:
    """One running ``python -m backend serve``: send requests, collect messages from ``messages``."""

    def __init__(self, config: BackendConfig):
        self.config = config
        self.messages: queue.Queue = queue.Queue()
        argv = config.command()
        root = config.backend_root
        if not root or not (Path(root) / "backend" / "__init__.py").is_file():
            raise BackendError(f"the backend package was not found in {root!r}", "no_backend")
        env = dict(os.environ)
        env.update(config.extra_env)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        env["PYTHONIOENCODING"] = "utf-8"
        env.pop("PYTHONHOME", None)  # Blender sets it for its own Python; the backend's must not inherit it
        flags = subprocess.CREATE_NO_WINDOW if sys.platform == "win32" else 0
        self._stderr = _open_log(config.log)
        try:
            self.proc = subprocess.Popen(argv, cwd=root, env=env, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=self._stderr,
                                         encoding="utf-8", bufsize=1, creationflags=flags)
        except OSError as exc:
            self._close_log()
            raise BackendError(f"the backend could not be started ({config.python}): {exc}", "no_backend") from exc
        self._reader = threading.Thread(target=self._read, name="avitalk-backend-reader", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        """Reader thread: stdout lines -> dicts on the queue; an ``exit`` message when the pipe closes."""
        for line in self.proc.stdout:
            line = line.strip()
            if not line:
                continue
            try:
                message = json.loads(line)
            except ValueError:
                message = None
            if not isinstance(message, dict) or not isinstance(message.get("type"), str):
                message = {"type": "garbage", "line": line[:200]}
            self.messages.put(message)
        code = self.proc.wait()
        self._close_log()
        self.messages.put({"type": "exit", "returncode": code})

    def send(self, request: dict) -> None:
        """Write one request line; BackendError when the process is gone."""
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        except (OSError, ValueError) as exc:
            raise BackendError(f"the backend is not running (it exited with code {self.proc.poll()})") from exc

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, wait: float = 5.0) -> None:
        """Close stdin (the server cancels and exits); kill it if it does not go within ``wait`` seconds."""
        if self.alive():
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                self.kill()
        self._reader.join(timeout=1.0)

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
            self.proc.wait()

    def _close_log(self) -> None:
        if self._stderr not in (subprocess.DEVNULL, None):
            self._stderr.close()


def _open_log(path: str):
    """The log file for the server's stderr, appended to; DEVNULL when no log is set or it cannot be opened."""
    if not path:
        return subprocess.DEVNULL
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return open(path, "a", encoding="utf-8")
    except OSError:
        return subprocess.DEVNULL

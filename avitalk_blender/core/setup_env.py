"""Create the backend's own Python environment (venv + pip) in a worker thread, with a progress readout.

The worker thread runs the commands of ``requirements.setup_commands`` one
after another and only puts plain tuples on a queue; the main thread calls
``poll`` to read them. Blender's own Python never gets these packages: they
go into the venv.
"""

from __future__ import annotations

import queue
import subprocess
import sys
import threading

from . import requirements


class EnvSetup:
    def __init__(self, venv_dir, base_python: str, torch_index: str = "", commands=None):
        self.venv_dir = str(venv_dir)
        self.commands = commands if commands is not None else requirements.setup_commands(venv_dir, base_python, torch_index)
        self.messages: queue.Queue = queue.Queue()
        self.step = 0                  # index of the running command
        self.label = "starting"
        self.last_line = ""
        self.state = "running"         # running | done | failed | cancelled
        self.error = ""
        self._proc = None
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name="avitalk-env-setup", daemon=True)
        self._thread.start()

    @property
    def python(self) -> str:
        return requirements.venv_python(self.venv_dir)

    @property
    def fraction(self) -> float:
        return 1.0 if self.state == "done" else self.step / max(1, len(self.commands))

    def _run(self) -> None:
        flags = subprocess.CREATE_NO_WINDOW if sys.platform == "win32" else 0
        for i, (label, argv) in enumerate(self.commands):
            self.messages.put(("step", i, label))
            try:
                self._proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                              stdin=subprocess.DEVNULL, encoding="utf-8", errors="replace",
                                              creationflags=flags)
            except OSError as exc:
                self.messages.put(("failed", f"{label}: could not run {argv[0]}: {exc}"))
                return
            tail = []
            for line in self._proc.stdout:
                line = line.rstrip()
                if line:
                    tail = (tail + [line])[-5:]
                    self.messages.put(("line", line[:200]))
            code = self._proc.wait()
            if self._cancel.is_set():
                self.messages.put(("cancelled", ""))
                return
            if code != 0:
                self.messages.put(("failed", f"{label} failed (exit code {code}): " + " | ".join(tail)))
                return
        self.messages.put(("done", ""))

    def poll(self, max_messages: int = 50) -> str:
        """Read what the worker reported (never blocks); returns the state."""
        for _ in range(max_messages):
            try:
                kind, *rest = self.messages.get_nowait()
            except queue.Empty:
                break
            if kind == "step":
                self.step, self.label = rest
            elif kind == "line":
                self.last_line = rest[0]
            elif kind == "failed":
                self.state, self.error = "failed", rest[0]
            elif kind in ("done", "cancelled"):
                self.state = kind
        return self.state

    def wait(self) -> str:
        self._thread.join()
        return self.poll(max_messages=10 ** 9)

    def cancel(self) -> None:
        self._cancel.set()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()

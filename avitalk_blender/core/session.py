"""The one backend session of this Blender: its process, the requests in flight, the job they serve.

A ``Session`` owns at most one ``BackendProcess``. ``submit`` sends a request
(starting the process first when there is none, so a crashed backend restarts
on the next request); ``poll`` drains at most ``max_messages`` queued messages
without blocking and returns the requests that ended. The Blender layer calls
``poll`` from a timer or a modal operator on the main thread; in background
mode it calls ``wait``. The session also holds the ``Job`` (core/job.py) those
requests serve, the last outcome for the panel, the last ``check`` result and
the backend environment set-up in progress. Everything here is plain Python: no ``bpy``.

Request ids start with a random prefix per session, so two Blender instances
(or two sessions) never mistake each other's messages or motion files.
"""

from __future__ import annotations

import itertools
import queue
import secrets
import time
from dataclasses import dataclass, field

from .client import BackendConfig, BackendError, BackendProcess, protocol

RUNNING, DONE, FAILED, CANCELLED = "running", "done", "failed", "cancelled"

STARTING = "starting"  # before the server's first progress message
# For one progress bar: the share of the whole request at which each of protocol.STAGES ends, and its label.
_STAGE_ENDS = (0.1, 0.25, 0.6, 0.7, 0.8, 1.0)
_LABELS = ("Loading models", "Speech features", "Writing the instruction", "Sampling a style",
           "Generating motion", "Sealing the lips")
STAGE_SPANS = {STARTING: (0.0, 0.02), **dict(zip(protocol.STAGES, zip((0.02,) + _STAGE_ENDS[:-1], _STAGE_ENDS)))}
STAGE_LABELS = {STARTING: "Starting the backend", **dict(zip(protocol.STAGES, _LABELS))}


def overall_fraction(stage: str, fraction: float) -> float:
    """One 0..1 number for a progress bar from a backend stage and the stage's own fraction."""
    start, end = STAGE_SPANS.get(stage, (0.0, 1.0))
    return start + (end - start) * min(max(float(fraction), 0.0), 1.0)


@dataclass
class Request:
    """One request sent to the backend and what came back for it."""

    id: str
    kind: str                       # check | analyze | generate | synthesize
    fields: dict                    # the request as sent
    tag: dict = field(default_factory=dict)   # the caller's plain data (scene name, segment, ...)
    state: str = RUNNING
    stage: str = STARTING
    fraction: float = 0.0           # the stage's own fraction
    result: dict | None = None
    error: str = ""
    code: str = ""
    warnings: list = field(default_factory=list)  # the result's warnings (silence, clipping, ...)

    @property
    def progress(self) -> float:
        return 1.0 if self.state != RUNNING else overall_fraction(self.stage, self.fraction)

    @property
    def label(self) -> str:
        return STAGE_LABELS.get(self.stage, self.stage)


class Session:
    """The backend process and the work in flight on it; see the module docstring."""

    def __init__(self, config: BackendConfig | None = None, clock=time.monotonic, process_factory=BackendProcess):
        self.config = config or BackendConfig()
        self.clock = clock
        self.process_factory = process_factory
        self.process = None
        self.requests: dict[str, Request] = {}  # running requests, in submission order
        self.ready: dict | None = None        # the server's ready message
        self.last_error = ""                  # the last failure, for the panel
        self.last_message_at = 0.0
        self.prefix = secrets.token_hex(4)    # request ids: unique to this session
        self._ids = itertools.count(1)
        self.job = None                       # the core.job.Job in flight, or None
        self.message = ""                     # the last outcome, for the panel
        self.waiting = ""                     # what a finished job waits for before its take is made, for the panel
        self.warnings: list = []              # the last job's warnings from the backend, for the panel
        self.check = None                     # the last check result (dict) or None
        self.setup = None                     # the core.setup_env.EnvSetup creating the environment, or None

    # ---- process ------------------------------------------------------------------

    def configure(self, config: BackendConfig) -> None:
        """Use ``config`` from the next start on; a running backend with other settings is stopped."""
        if config == self.config:
            return
        self.config = config
        if self.process is not None and not self.requests:
            self.stop()

    def running(self) -> bool:
        return self.process is not None and self.process.alive()

    def _ensure_process(self):
        if self.process is not None and not self.process.alive():
            self.process = None
        if self.process is None:
            self.ready = None
            self.process = self.process_factory(self.config)
            self.last_message_at = self.clock()
        return self.process

    def stop(self) -> None:
        """Stop the backend (cancels what runs); running requests end as cancelled."""
        for request in list(self.requests.values()):
            self._end(request, CANCELLED)
        if self.process is not None:
            self.process.stop()
        self.process = None

    # ---- requests ----------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """Whether a request is in flight (``working`` also counts a job between its requests)."""
        return bool(self.requests)

    def submit(self, kind: str, fields: dict | None = None, tag: dict | None = None) -> Request:
        """Send a request; BackendError when the backend cannot be started."""
        process = self._ensure_process()
        request = Request(f"{kind}-{self.prefix}-{next(self._ids)}", kind, {"type": kind, **(fields or {})}, dict(tag or {}))
        request.fields["id"] = request.id
        if not self.requests:
            self.last_message_at = self.clock()  # the stall clock starts when work starts
        self.requests[request.id] = request
        try:
            process.send(request.fields)
        except BackendError as exc:
            self._end(request, FAILED, str(exc), "crashed")
            self.process = None
            raise
        return request

    def cancel(self, request_ids=None) -> list[Request]:
        """Cancel running requests (all by default): they end now; the server stops at its next step."""
        ended = []
        for request_id in list(request_ids if request_ids is not None else self.requests):
            request = self.requests.get(request_id)
            if request is None:
                continue
            if self.running():
                try:
                    self.process.send({"type": protocol.CANCEL, "target": request.id})
                except BackendError:
                    pass
            self._end(request, CANCELLED)
            ended.append(request)
        return ended

    def _end(self, request: Request, state: str, error: str = "", code: str = "") -> None:
        request.state, request.error, request.code = state, error, code
        self.requests.pop(request.id, None)
        if error:
            self.last_error = error

    # ---- messages ---------------------------------------------------------------------

    def poll(self, max_messages: int = 20) -> list[Request]:
        """Handle at most ``max_messages`` queued messages, never blocking; return the requests that ended."""
        ended: list[Request] = []
        if self.process is None:
            return ended
        for _ in range(max_messages):
            try:
                message = self.process.messages.get_nowait()
            except queue.Empty:
                break
            ended += self._handle(message)
            if self.process is None:
                return ended
        ended += self._check_stall()
        return ended

    def wait(self, request: Request, timeout: float | None = None) -> Request:
        """Block until ``request`` ends (background mode and scripts). Stalls end it with an error."""
        deadline = None if timeout is None else self.clock() + timeout
        while request.state == RUNNING:
            if self.process is None:
                raise BackendError("the backend is not running")
            wait = self.config.stall_timeout if deadline is None else min(self.config.stall_timeout, deadline - self.clock())
            try:
                message = self.process.messages.get(timeout=max(0.05, min(wait, 1.0)))
            except queue.Empty:
                self._check_stall()
                if deadline is not None and self.clock() > deadline and request.state == RUNNING:
                    self.cancel([request.id])
                continue
            self._handle(message)
        return request

    def _handle(self, message: dict) -> list[Request]:
        self.last_message_at = self.clock()
        kind = message["type"]
        if kind == protocol.READY:
            self.ready = message
            if message.get("protocol") != protocol.VERSION:
                return self._fail_all(f"the backend speaks protocol {message.get('protocol')}, this add-on {protocol.VERSION}; "
                                      "update the backend environment", "protocol", kill=True)
            return []
        if kind == "exit":
            self.process = None
            if not self.requests:
                return []
            log = f"; see its log ({self.config.log})" if self.config.log else ""
            return self._fail_all(f"the backend exited unexpectedly (code {message.get('returncode')}){log}. "
                                  "It restarts on the next request.", "crashed")
        request = self.requests.get(message.get("id"))
        if request is None:  # a message for a request that was cancelled or dropped, or garbage
            return []
        if kind == protocol.PROGRESS:
            request.stage = str(message.get("stage", request.stage))
            request.fraction = float(message.get("fraction", 0.0))
            return []
        if kind == protocol.RESULT:
            request.result = message
            request.warnings = [str(w) for w in message.get("warnings") or []]
            self._end(request, DONE)
        elif kind == protocol.CANCELLED:
            self._end(request, CANCELLED)
        elif kind == protocol.ERROR:
            self._end(request, FAILED, str(message.get("message", "the backend failed")), str(message.get("code", "")))
        else:
            return []
        return [request]

    def _check_stall(self) -> list[Request]:
        if not self.requests or self.clock() - self.last_message_at <= self.config.stall_timeout:
            return []
        return self._fail_all(f"the backend sent nothing for {self.config.stall_timeout:.0f} s and was stopped; "
                              "it restarts on the next request", "timeout", kill=True)

    def _fail_all(self, error: str, code: str, kill: bool = False) -> list[Request]:
        ended = list(self.requests.values())
        for request in ended:
            self._end(request, FAILED, error, code)
        self.last_error = error
        if kill and self.process is not None:
            self.process.kill()
            self.process = None
        return ended

    # ---- the job these requests serve --------------------------------------------------

    @property
    def working(self) -> bool:
        """Whether a job or a request is in flight."""
        return self.job is not None or self.busy

    def progress(self) -> tuple:
        """(0..1, label) of the work in flight."""
        running = list(self.requests.values())
        if not running:
            return (1.0, self.waiting) if self.waiting else (0.0, "Working")
        first = running[0]
        if self.job is None or len(self.job.segment_instructions) == 1:
            return first.progress, first.label
        done = len(self.job.motions)
        total = max(len(set(self.job.effective_instructions())), done + len(running))
        return (done + first.progress) / total, f"{first.label} ({done + 1}/{total})"

    def drop(self, reason: str = "") -> None:
        """Forget the job in flight (cancel its requests on the backend); its results are never applied."""
        self.cancel()
        self.job = None
        self.waiting = ""
        if reason:
            self.message = reason

    def shutdown(self) -> None:
        """Drop the job and stop the backend process."""
        self.job = None
        self.stop()

    def setting_up(self) -> bool:
        """Whether the backend environment is being created."""
        return self.setup is not None and self.setup.state == "running"


def check_summary(result: dict) -> str:
    """One line (parts joined by "; ") for the artist from a ``check`` result."""
    head = (f"AVI-Talk backend {result.get('version', '?')}, Python {result.get('python', '?')}, "
            f"torch {result.get('torch', '?')}, numpy {result.get('numpy', '?')}, device {result.get('device', '?')}")
    if result.get("cuda_device"):
        head += f" ({result['cuda_device']})"
    if result.get("pending"):
        return "checking the backend..."
    if "version" not in result:
        return f"the backend did not start: {result.get('models_error', '?')}"
    if result.get("models_ok"):
        return head + f"; models load (speech {result.get('speech_encoder', '?')}, content {result.get('content_encoder', '?')})"
    return head + f"; models do not load: {result.get('models_error', '?')}"

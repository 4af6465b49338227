"""The one backend session: jobs, their progress, cancel, timeouts and restarts.

A ``Session`` owns at most one ``BackendProcess``. ``submit`` sends a request
(starting the process first when there is none, so a crashed backend restarts
on the next request); ``poll`` drains at most ``max_messages`` queued messages
without blocking and returns the jobs that ended. The Blender layer calls
``poll`` from a timer or a modal operator on the main thread; in background
mode it calls ``wait``. Everything here is plain Python: no ``bpy``.
"""

from __future__ import annotations

import itertools
import queue
import time
from dataclasses import dataclass, field

from .client import PROTOCOL, BackendConfig, BackendError, BackendProcess

RUNNING, DONE, FAILED, CANCELLED = "running", "done", "failed", "cancelled"

# Share of the whole request that each backend stage ends at, for one progress bar.
STAGE_SPANS = {"starting": (0.0, 0.02), "loading": (0.02, 0.1), "features": (0.1, 0.25),
               "stage1": (0.25, 0.6), "stage2_prior": (0.6, 0.7), "stage2_generator": (0.7, 0.8), "lip_seal": (0.8, 1.0)}
STAGE_LABELS = {"starting": "Starting the backend", "loading": "Loading models", "features": "Speech features",
                "stage1": "Writing the instruction", "stage2_prior": "Sampling a style",
                "stage2_generator": "Generating motion", "lip_seal": "Sealing the lips"}


def overall_fraction(stage: str, fraction: float) -> float:
    """One 0..1 number for a progress bar from a backend stage and the stage's own fraction."""
    start, end = STAGE_SPANS.get(stage, (0.0, 1.0))
    return start + (end - start) * min(max(float(fraction), 0.0), 1.0)


@dataclass
class Job:
    id: str
    kind: str                       # check | analyze | generate | synthesize
    request: dict
    tag: dict = field(default_factory=dict)   # the caller's plain data (scene name, segment, ...)
    state: str = RUNNING
    stage: str = "starting"
    fraction: float = 0.0           # the stage's own fraction
    result: dict | None = None
    error: str = ""
    code: str = ""

    @property
    def progress(self) -> float:
        return 1.0 if self.state != RUNNING else overall_fraction(self.stage, self.fraction)

    @property
    def label(self) -> str:
        return STAGE_LABELS.get(self.stage, self.stage)


class Session:
    def __init__(self, config: BackendConfig | None = None, clock=time.monotonic, process_factory=BackendProcess):
        self.config = config or BackendConfig()
        self.clock = clock
        self.process_factory = process_factory
        self.process = None
        self.jobs: dict[str, Job] = {}        # running jobs, in submission order
        self.ready: dict | None = None        # the server's ready message
        self.last_error = ""                  # the last failure, for the panel
        self.last_message_at = 0.0
        self._ids = itertools.count(1)

    # ---- process ------------------------------------------------------------------

    def configure(self, config: BackendConfig) -> None:
        """Use ``config`` from the next start on; a running backend with other settings is stopped."""
        if config == self.config:
            return
        self.config = config
        if self.process is not None and not self.jobs:
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
        """Stop the backend (cancels what runs); running jobs end as cancelled."""
        for job in list(self.jobs.values()):
            self._end(job, CANCELLED)
        if self.process is not None:
            self.process.stop()
        self.process = None

    # ---- jobs -------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return bool(self.jobs)

    def submit(self, kind: str, fields: dict | None = None, tag: dict | None = None) -> Job:
        """Send a request; BackendError when the backend cannot be started."""
        process = self._ensure_process()
        job = Job(f"{kind}-{next(self._ids)}", kind, {"type": kind, **(fields or {})}, dict(tag or {}))
        job.request["id"] = job.id
        if not self.jobs:
            self.last_message_at = self.clock()  # the stall clock starts when work starts
        self.jobs[job.id] = job
        try:
            process.send(job.request)
        except BackendError as exc:
            self._end(job, FAILED, str(exc), "crashed")
            self.process = None
            raise
        return job

    def cancel(self, job_ids=None) -> list[Job]:
        """Cancel running jobs (all by default): they end now; the server stops at its next step."""
        ended = []
        for job_id in list(job_ids if job_ids is not None else self.jobs):
            job = self.jobs.get(job_id)
            if job is None:
                continue
            if self.running():
                try:
                    self.process.send({"type": "cancel", "target": job.id})
                except BackendError:
                    pass
            self._end(job, CANCELLED)
            ended.append(job)
        return ended

    def _end(self, job: Job, state: str, error: str = "", code: str = "") -> None:
        job.state, job.error, job.code = state, error, code
        self.jobs.pop(job.id, None)
        if error:
            self.last_error = error

    # ---- messages ---------------------------------------------------------------------

    def poll(self, max_messages: int = 20) -> list[Job]:
        """Handle at most ``max_messages`` queued messages, never blocking; return the jobs that ended."""
        ended: list[Job] = []
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

    def wait(self, job: Job, timeout: float | None = None) -> Job:
        """Block until ``job`` ends (background mode and scripts). Stalls end it with an error."""
        deadline = None if timeout is None else self.clock() + timeout
        while job.state == RUNNING:
            if self.process is None:
                raise BackendError("the backend is not running")
            wait = self.config.stall_timeout if deadline is None else min(self.config.stall_timeout, deadline - self.clock())
            try:
                message = self.process.messages.get(timeout=max(0.05, min(wait, 1.0)))
            except queue.Empty:
                self._check_stall()
                if deadline is not None and self.clock() > deadline and job.state == RUNNING:
                    self.cancel([job.id])
                continue
            self._handle(message)
        return job

    def _handle(self, message: dict) -> list[Job]:
        self.last_message_at = self.clock()
        kind = message["type"]
        if kind == "ready":
            self.ready = message
            if message.get("protocol") != PROTOCOL:
                return self._fail_all(f"the backend speaks protocol {message.get('protocol')}, this add-on {PROTOCOL}; "
                                      "update the backend environment", "protocol", kill=True)
            return []
        if kind == "exit":
            self.process = None
            if not self.jobs:
                return []
            log = f"; see its log ({self.config.log})" if self.config.log else ""
            return self._fail_all(f"the backend exited unexpectedly (code {message.get('returncode')}){log}. "
                                  "It restarts on the next request.", "crashed")
        job = self.jobs.get(message.get("id"))
        if job is None:  # a message for a job that was cancelled or dropped, or garbage
            return []
        if kind == "progress":
            job.stage = str(message.get("stage", job.stage))
            job.fraction = float(message.get("fraction", 0.0))
            return []
        if kind == "result":
            job.result = message
            self._end(job, DONE)
        elif kind == "cancelled":
            self._end(job, CANCELLED)
        elif kind == "error":
            self._end(job, FAILED, str(message.get("message", "the backend failed")), str(message.get("code", "")))
        else:
            return []
        return [job]

    def _check_stall(self) -> list[Job]:
        if not self.jobs or self.clock() - self.last_message_at <= self.config.stall_timeout:
            return []
        return self._fail_all(f"the backend sent nothing for {self.config.stall_timeout:.0f} s and was stopped; "
                              "it restarts on the next request", "timeout", kill=True)

    def _fail_all(self, error: str, code: str, kill: bool = False) -> list[Job]:
        ended = list(self.jobs.values())
        for job in ended:
            self._end(job, FAILED, error, code)
        self.last_error = error
        if kill and self.process is not None:
            self.process.kill()
            self.process = None
        return ended

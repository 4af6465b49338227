"""One Generate or Regenerate: the job, a plan of backend requests (bpy-free).

A clip may be split into segments, each with its own instruction ("" means
the clip's instruction). Generate first asks the backend for the whole clip
with ``instruction=None`` (stage 1 writes it, stage 2 uses it); every other
distinct segment instruction then needs stage 2 only (``synthesize``; the
speech features are cached). Regenerate sends ``synthesize`` for each
distinct instruction at once. When every motion is in, ``motion_paths()``
lists one motion file per segment, ready for ``segments.blend_motions``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import backend_ref
from .errors import InputError

protocol = backend_ref.protocol()
GENERATE, REGENERATE = "generate", "regenerate"


@dataclass
class Job:
    """What the artist asked for and what has come back; the session sends its requests."""

    kind: str                          # GENERATE | REGENERATE
    audio: str                         # the mixed clip (WAV)
    seed: int
    controls: dict
    instruction: str | None            # the clip's instruction; None: stage 1 writes it
    segment_instructions: list = field(default_factory=lambda: [""])  # one per segment, "" = the clip's
    tag: dict = field(default_factory=dict)  # the caller's plain data: scene and rig names, frames, ...
    dialogue: str = ""                 # what the clip says (optional): times the lip seal; "" = recognised
    language: str = "en"               # the dialogue's language, for the aligner
    lips: dict = field(default_factory=dict)     # the backend's lip-seal report (what timed the closures)
    motions: dict = field(default_factory=dict)   # instruction -> motion file
    pending: dict = field(default_factory=dict)   # job id -> instruction (None: stage 1's)
    inferred: bool = False
    stage1_ran: bool = False
    features_cached: list = field(default_factory=list)
    timings: list = field(default_factory=list)
    warnings: list = field(default_factory=list)  # the backend's warnings (silence, clipping, ...), once each

    def __post_init__(self):
        if self.kind not in (GENERATE, REGENERATE):
            raise ValueError(f"unknown job kind {self.kind!r}")
        if self.kind == REGENERATE and not (self.instruction or "").strip():
            raise InputError("Regenerate needs an instruction: run Generate first, or type one")
        if not self.segment_instructions:
            self.segment_instructions = [""]

    def effective_instructions(self) -> list:
        """Each segment's instruction, with the clip's filled in (None until stage 1 has written it)."""
        return [s.strip() or self.instruction for s in self.segment_instructions]

    def _request(self, kind: str, instruction) -> tuple:
        return kind, {"audio": self.audio, "instruction": instruction, "seed": self.seed, "controls": self.controls,
                      "transcript": self.dialogue.strip() or None, "language": self.language.strip() or "en"}

    def first_requests(self) -> list:
        """``[(request type, fields), ...]`` to send now; pair each with its job via ``sent``."""
        if self.kind == GENERATE and self.instruction is None:
            return [self._request(protocol.GENERATE, None)]
        return self._missing()

    def _missing(self) -> list:
        wanted = []
        for text in self.effective_instructions():
            if text not in self.motions and text not in self.pending.values() and text not in wanted:
                wanted.append(text)
        return [self._request(protocol.SYNTHESIZE, text) for text in wanted]

    def sent(self, job_id: str, fields: dict) -> None:
        self.pending[job_id] = fields["instruction"]

    def on_result(self, job_id: str, result: dict) -> list:
        """Take in one result; returns the follow-up requests (stage 2 for the segments' own instructions)."""
        asked = self.pending.pop(job_id)
        self.motions[result["instruction"] if asked is None else asked] = result["motion"]
        self.features_cached.append(bool(result.get("features_cached")))
        self.timings.append(result.get("timings", {}))
        self.lips = result.get("lip_seal") or self.lips
        self.warnings += [str(w) for w in result.get("warnings") or [] if str(w) not in self.warnings]
        if asked is None:
            self.instruction = result["instruction"]
            self.inferred = bool(result.get("inferred", True))
            self.stage1_ran = self.stage1_ran or bool(result.get("stage1_ran"))
            return self._missing()
        return []

    def lips_summary(self) -> str:
        """One line for the panel: what timed the lip closures."""
        source = self.lips.get("source")
        if source == "transcript":
            return "lips timed from the dialogue text"
        if source == "recognized":
            heard = self.lips.get("text", "")
            return f"lips timed from speech heard as \"{heard[:60] + '...' if len(heard) > 60 else heard}\""
        if source == "none":
            return "lips from the audio alone (no confident words; type the Dialogue to time them)"
        return ""

    @property
    def done(self) -> bool:
        return not self.pending and self.instruction is not None and all(
            text in self.motions for text in self.effective_instructions())

    def motion_paths(self) -> list:
        """One motion file per segment, in order."""
        if not self.done:
            raise ValueError("the job is not finished")
        return [self.motions[text] for text in self.effective_instructions()]

"""The one error family: every error a user can cause derives from ``AviTalkError``.

Each carries the protocol code the server reports it under (``backend.protocol``
lists them). The CLI and the server catch this family, and only this family, in
one place each: anything else is a bug and stays a traceback (the server's
``internal`` error, with the log's path). No torch, numpy or bpy here, so the
Blender side can import it.
"""

from __future__ import annotations


class AviTalkError(Exception):
    """Something the user can fix: bad input, a missing file or model, a setting out of range."""

    code = "bad_request"

    def __init__(self, message: str = "", code: str | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code


class RequestError(AviTalkError):
    """A malformed request or option: a field missing, of the wrong type or out of range."""

    code = "bad_request"


class InstructionError(AviTalkError):
    """An instruction that cannot drive stage 2: empty, too long, no words."""

    code = "bad_instruction"


class ModelError(AviTalkError):
    """A model that cannot be loaded or run: a missing package or folder, a mismatched checkpoint."""

    code = "model_error"


class Cancelled(AviTalkError):
    """Raised from a progress callback to stop a running request."""

    code = "cancelled"


EXCERPT_CHARS = 80


def excerpt(value, limit: int = EXCERPT_CHARS) -> str:
    """A short ``repr`` of bad input for a message: never echo a whole 50 MB field back."""
    text = repr(value) if len(str(value)) <= 4 * limit else repr(str(value)[: 4 * limit])
    return text if len(text) <= limit else text[: limit - 3] + "..."

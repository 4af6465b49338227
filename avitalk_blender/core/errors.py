"""The extension's errors: members of the backend's one family, ``AviTalkError``.

Operators catch that family in one place (``ops_common.run``) and report its
message; anything else is a bug and stays a traceback.
"""

from . import backend_ref

AviTalkError = backend_ref.errors().AviTalkError


class InputError(AviTalkError):
    """A setting or file the artist chose is missing or unusable (no audio, no take selected, ...)."""

    code = "bad_request"


class RigError(AviTalkError):
    """The selection or the rig is not what an operator needs."""

    code = "bad_request"

"""The JSON-lines protocol between Blender and ``python -m backend serve``: the one place both sides read.

One JSON object per line on the server's stdin (requests) and stdout
(messages); docs/architecture.md describes each field. Standard library only:
Blender's Python imports this module.
"""

from __future__ import annotations

VERSION = 1

# requests
CHECK, ANALYZE, GENERATE, SYNTHESIZE, CANCEL, SHUTDOWN = "check", "analyze", "generate", "synthesize", "cancel", "shutdown"
REQUESTS = (CHECK, ANALYZE, GENERATE, SYNTHESIZE, CANCEL, SHUTDOWN)
WORK_REQUESTS = (CHECK, ANALYZE, GENERATE, SYNTHESIZE)  # carry an 'id' and end in result, error or cancelled

# messages
READY, PROGRESS, RESULT, ERROR, CANCELLED, BYE = "ready", "progress", "result", "error", "cancelled", "bye"
MESSAGES = (READY, PROGRESS, RESULT, ERROR, CANCELLED, BYE)
FINAL = (RESULT, ERROR, CANCELLED)  # a request's last message

# the stages a progress message names, in the order they run
STAGES = ("loading", "features", "stage1", "stage2_prior", "stage2_generator", "lip_seal")

# error codes
BAD_REQUEST, BAD_AUDIO, BAD_INSTRUCTION, NO_WEIGHTS, MODEL_ERROR, INTERNAL = (
    "bad_request", "bad_audio", "bad_instruction", "no_weights", "model_error", "internal")
ERROR_CODES = (BAD_REQUEST, BAD_AUDIO, BAD_INSTRUCTION, NO_WEIGHTS, MODEL_ERROR, INTERNAL)

# the panel's controls (a generate request's 'controls'): name -> (minimum, maximum, default);
# the server, the CLI and Blender's properties all bound them here
CONTROL_RANGES = {
    "intensity": (0.0, 3.0, 1.0),     # scales every expression channel and the jaw
    "upper_face": (0.0, 3.0, 1.0),    # extra scale on eyes, brows, cheeks and nose
    "lower_face": (0.0, 3.0, 1.0),    # extra scale on mouth, lips, chin and the jaw
    "smoothing": (0.0, 25.0, 0.0),    # Gaussian sigma in frames (25: one second at 25 fps)
}
CONTROL_SWITCHES = {"head_motion": True, "blinks": True}  # name -> default
MAX_SEED = 2**31 - 1  # seeds are 0..MAX_SEED

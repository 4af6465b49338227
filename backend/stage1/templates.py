"""The instruction templates that follow the audio soft prompt (paper, Sec. III-C).

The paper crafts 10 sentences of similar meaning and samples one at random
during training; inference uses the first unless told otherwise.
"""

from __future__ import annotations

TEMPLATES = (
    "Analyze conveyed emotion in an audio snippet, elaborating on facial expressions.",
    "Listen to the speech and describe the facial expressions of the speaker.",
    "From the voice in this audio, describe how the speaker's face moves.",
    "Infer the speaker's emotional state from the audio and depict the facial details.",
    "Describe the expression on the speaker's face that matches the tone of this audio.",
    "Based on the audio clip, explain which facial movements convey the speaker's mood.",
    "Interpret the feeling in this speech and portray the corresponding facial expression.",
    "Identify the emotion in the audio and detail how the eyes, brows and mouth look.",
    "Give a description of the speaker's face while saying this, reflecting their emotion.",
    "Examine the speaking style in the audio and elaborate on the facial expressions it implies.",
)


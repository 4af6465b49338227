"""Free wordings of an emotion: idioms and scene descriptions, for training the instruction path.

The corpus's instructions name an emotion with one adjective from a short
table (``instructions.EMOTION_LEVELS``). Animators write "she is seeing red" or
"a man who just won the lottery". These sentences teach the instruction path
such wordings; training adds a few to every clip of an emotion that is not
slight (``train.cache.phrasings``). They are not corpus instructions, and the
evaluator's emotion-word table does not read them.

None of their content words appears in the evaluator's unseen free-text
instructions (``evaluate.follow``), so that wording stays unseen: a test checks.
"""

from __future__ import annotations

import numpy as np

# emotion -> predicates after a subject; {pos} his/her, {refl} himself/herself
PARAPHRASES: dict[str, tuple[str, ...]] = {
    "neutral": (
        "speaks in a monotone", "delivers the lines matter-of-factly", "is relaxed and unemotional",
        "gives a routine update", "talks in a businesslike way", "has a poker face",
        "goes through the instructions with no emotion", "is detached and indifferent", "uses a neutral tone",
        "speaks like a newsreader", "is unruffled", "is deadpan", "is placid", "recites the numbers mechanically",
        "shows no reaction at all", "answers politely and impersonally", "explains the rules patiently",
        "describes the route step by step", "talks about the schedule", "sounds businesslike and composed",
        "is neither happy nor sad", "gives directions to a stranger", "speaks in an ordinary tone",
        "makes a routine phone call", "is cool and collected", "is stoic", "reports the results objectively",
        "has a relaxed, blank expression", "sounds disinterested", "narrates a documentary",
        "goes through the terms and conditions", "confirms the appointment",
    ),
    "happy": (
        "is in a great mood", "is all smiles", "is bubbly and upbeat", "is jubilant", "lights up with pleasure",
        "is full of cheer", "is walking on air", "just won the lottery", "is chuffed",
        "is having the time of {pos} life", "is giggling with delight", "is as happy as can be", "is radiant",
        "is in a sunny mood", "is thrilled to bits", "could not be more pleased", "is celebrating",
        "is overjoyed to see an old friend", "bursts into happy laughter", "is in a fantastic mood",
        "passed the test with flying colours", "got a wonderful letter", "is excited about the holiday",
        "is smiling from cheek to cheek", "is delighted with the gift", "sounds cheerful and bright", "is gleeful",
        "is euphoric", "has a big happy grin", "is thankful and warm", "is on top of the world",
        "is having a lovely afternoon", "is in love and happy",
    ),
    "angry": (
        "is seeing red", "is up in arms", "is beside {refl} with fury", "speaks through clenched teeth",
        "is spitting mad", "has had enough and says so loudly", "barks every word", "is in a towering fury",
        "wants to punch the wall", "is hopping mad", "is steaming", "raises {pos} voice in fury", "is on the warpath",
        "storms in, yelling", "is irate", "growls with hostility", "shouts at full volume", "is incensed",
        "is furious at the mistake", "is yelling at the neighbours", "bangs on the desk", "is losing patience fast",
        "is irritated beyond words", "confronts the thief", "is hostile and aggressive", "argues bitterly",
        "is mad as hell", "demands an apology right now", "snarls at the crowd", "glowers at the room", "is wrathful",
        "is spoiling for a fight", "scolds the kids harshly", "is livid with the boss",
    ),
    "sad": (
        "is down in the dumps", "has an aching heart", "is sobbing quietly", "fights back a sob", "is inconsolable",
        "sounds defeated and hopeless", "is crying", "misses someone terribly", "has the blues",
        "is alone and abandoned", "is full of sorrow", "is gloomy", "is despondent", "has given up all hope",
        "is melancholy", "is woeful", "says goodbye for the last time", "is forlorn", "is crying over a breakup",
        "is grieving a pet that died", "is tearful", "sighs with sadness", "is depressed and tired of it all",
        "is on the brink of sobbing", "has just been dumped", "is homesick", "is sorry and regretful",
        "is disappointed and low", "says a sad farewell", "remembers a friend who died", "is downhearted",
        "is hurt and lonely", "can hardly hold back the sobs", "stands at a graveside",
    ),
    "surprised": (
        "jumps when the phone rings", "gapes in amazement", "jumps at the unexpected", "is bowled over",
        "is gobsmacked", "reacts with a jolt of surprise", "says no way in amazement", "is speechless with amazement",
        "gazes in wide-eyed wonder", "is thunderstruck", "lifts {pos} brows in amazement", "never expected this",
        "blinks in wonder", "is staggered", "hears something incredible", "is struck dumb", "exclaims out loud",
        "is amazed by the magic trick", "is shocked by the result", "is startled by a loud bang",
        "exclaims oh my goodness", "is astonished at the price", "opens the present in wonder",
        "is bewildered by the twist", "reacts to unexpected visitors", "is flabbergasted",
        "never dreamed this would happen", "stares open-mouthed", "is stunned by the reveal", "is awestruck",
        "hears the lottery numbers and gapes", "learns a shocking secret", "is amazed",
    ),
    "fear": (
        "is scared stiff", "is quaking in {pos} boots", "has {pos} heart pounding with terror", "is jumpy and on edge",
        "is frightened out of {pos} wits", "cowers from a threat", "is alarmed", "is spooked", "gets a chill of terror",
        "breaks into a sweat of terror", "is paralysed by fright", "senses danger closing in", "is jittery",
        "whispers in terror", "is white as a sheet", "begs for help", "hides from an intruder", "is afraid of the dark",
        "is terrified of the intruder", "hears something creeping closer", "is nervous and shaky-voiced",
        "is scared for {pos} life", "runs from a monster", "is anxious about the danger", "is horrified by the scream",
        "is fearful and tense", "flinches at every sound", "is too scared to move", "pleads with the attacker",
        "is petrified of heights", "senses something evil nearby", "is afraid of being found", "whimpers in fright",
    ),
    "disgusted": (
        "gags at the sight", "is repelled", "calls it nasty", "pulls a face at the taste", "is sick to {pos} stomach",
        "shudders with revulsion", "cannot stomach it", "says it tastes yucky", "turns away in distaste",
        "says ew with a grimace", "opens a fridge full of mouldy leftovers", "is nauseous", "considers it repugnant",
        "steps in something slimy", "is sickened by the sight", "is queasy at the thought",
        "is revolted by the overflowing bin", "gags on a bad oyster", "is grossed out by the bugs",
        "screws up {pos} face at the filth", "is appalled by the toilet", "is nauseated by the sight of blood",
        "spits out the bad taste", "pinches {pos} nostrils shut", "is disgusted by the dirty dishes", "says yuck",
        "is horrified by the slime", "turns from the mess in revulsion", "cannot bear the stink",
        "is sickened by the cruelty", "eats something awful", "touches something sticky and disgusting",
    ),
    "contempt": (
        "treats others as beneath {pos} notice", "is patronising", "scoffs at the suggestion", "mocks the other person",
        "speaks with a derisive curl of the lip", "treats people as fools", "is arrogant", "sniffs dismissively",
        "belittles people", "cannot take anyone seriously", "curls {pos} lip in mockery", "is snooty", "is sarcastic",
        "is supercilious", "scoffs", "shows total disrespect", "waves the proposal away dismissively",
        "is scornful of the amateur", "is disdainful of the cheap wine", "mocks the beginner",
        "is haughty toward the waiter", "regards the crowd with scorn", "is contemptuous of the rules",
        "scoffs at the rival", "laughs at the poor attempt", "is dismissive and snide", "talks down to the intern",
        "is condescending and aloof", "considers the plan pathetic", "is arrogant and sneering",
        "treats the guests with scorn", "is unimpressed and mocking", "is elitist and snobbish",
    ),
}

_PRONOUNS = {"male": {"pos": "his", "refl": "himself"}, "female": {"pos": "her", "refl": "herself"},
             None: {"pos": "their", "refl": "themselves"}}
_SUBJECTS = {"male": ("A man", "He", "The man", "A guy", "The speaker"), "female": ("A woman", "She", "The woman", "A lady", "The speaker"),
             None: ("The speaker", "The actor", "The character")}
_NOUNS = {"male": ("A man", "A guy", "Someone"), "female": ("A woman", "A lady", "Someone"), None: ("A speaker", "A character")}

def paraphrases(emotion: str, gender: str | None, seed: int, count: int) -> list[str]:
    """``count`` different free wordings of ``emotion`` for a speaker of ``gender`` (None: unknown), deterministic per seed."""
    if emotion not in PARAPHRASES:
        raise ValueError(f"no paraphrases for emotion {emotion!r}; expected one of {sorted(PARAPHRASES)}")
    if gender not in _PRONOUNS:
        raise ValueError(f"gender must be 'male', 'female' or None, got {gender!r}")
    rng = np.random.default_rng(seed)
    phrases = PARAPHRASES[emotion]
    out: list[str] = []
    for i in rng.permutation(len(phrases))[:count]:
        predicate = phrases[i].format(**_PRONOUNS[gender])
        if rng.random() < 0.3:
            out.append(f"{rng.choice(_NOUNS[gender])} who {predicate}.")
        else:
            out.append(f"{rng.choice(_SUBJECTS[gender])} {predicate}.")
    return out

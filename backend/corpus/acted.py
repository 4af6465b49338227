"""Real acted speech with weak emotion labels: the Hedgewars voice packs (Debian ``hedgewars-data``, GFDL-1.3).

Every pack performs the same game events (a threat, a victory cheer, a groan
at a miss, an alarm ...), each pack by another voice actor, so the event name
is a weak label of how the line is acted. ``EVENTS`` is our table, event ->
(emotion, trusted, effort): ``trusted`` marks events whose line is acted one
way in every pack we may use (a threat is angry); the others are labelled by
their usual reading but are less sure (a taunt may be angry or gleeful).
``effort`` is the vocal effort the event calls for (0 hushed .. 2 shouted).
Events of pain, effort and coughing (``Ow``, ``Ooff``, ``Jump``, ``Firepunch``
...) carry no emotion of the eight and are left out. The table and its
reasons: ``docs/real_voices.md``.

Only ``PACKS`` are read. The other packs of the package (British, Classic,
Default, Mobster, Pirate) are kept for a final check that no training,
tuning or evaluation here ever sees; nothing in this module names their files.
The packs' voices are pitched up (hedgehogs), so their speakers' sex is not
labelled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

VOICES = Path("/usr/share/games/hedgewars/Data/Sounds/voices")
PACKS = ("HillBilly", "Robot", "Russian", "Singer", "Surfer", "Default_es", "Default_pl", "Default_ru", "Default_uk", "Russian_pl")
LICENSE = "GFDL-1.3 (Hedgewars, Debian hedgewars-data)"

# event -> (emotion, trusted, effort 0..2)
EVENTS: dict[str, tuple[str, bool, int]] = {
    # threats and revenge: angry
    "Youllregretthat": ("angry", True, 2), "Illgetyou": ("angry", True, 2), "Gonnagetyou": ("angry", True, 2),
    "Justyouwait": ("angry", True, 1), "Revenge": ("angry", True, 2), "Cutitout": ("angry", True, 2),
    "Leavemealone": ("angry", True, 2), "Traitor": ("angry", True, 2),
    "Sameteam": ("angry", False, 1), "Watchit": ("angry", False, 2), "Comeonthen": ("angry", False, 2),
    # triumph and praise: happy
    "Victory": ("happy", True, 2), "Flawless": ("happy", True, 2), "Excellent": ("happy", True, 1),
    "Brilliant": ("happy", True, 1), "Laugh": ("happy", True, 2), "Enemydown": ("happy", True, 1),
    "Firstblood": ("happy", True, 1), "Amazing": ("happy", False, 1), "Watchthis": ("happy", False, 1),
    "Thisoneismine": ("happy", False, 1),
    # disappointment and dismay: sad
    "Nooo": ("sad", True, 1), "Missed": ("sad", True, 1), "Drat": ("sad", True, 1), "Ohdear": ("sad", True, 0),
    "Bugger": ("sad", False, 1), "Byebye": ("sad", False, 0), "Solong": ("sad", False, 0),
    # alarm: fear
    "Takecover": ("fear", True, 2), "Incoming": ("fear", True, 2), "Runaway": ("fear", True, 2),
    "Uh-oh": ("fear", True, 1), "Hurry": ("fear", False, 2), "Grenade": ("fear", False, 2), "Fire": ("fear", False, 2),
    # surprise
    "Whatthe": ("surprised", True, 1), "Oops": ("surprised", False, 1),
    # insults and boredom: contempt
    "Coward": ("contempt", True, 1), "Stupid": ("contempt", True, 1), "Nutter": ("contempt", False, 1),
    "Boring": ("contempt", False, 0),
    # plain lines: neutral
    "Yessir": ("neutral", True, 1), "Hello": ("neutral", True, 1), "Reinforcements": ("neutral", False, 1),
    "Hmm": ("neutral", False, 0),
}
# events with no emotion of the eight (pain, effort, coughing, battle cries for one weapon)
UNLABELLED = ("Ow", "Ouch", "Ooff", "Jump", "Firepunch", "PoisonCough", "PoisonMoan", "Kamikaze", "Melon", "Flyaway")


@dataclass(frozen=True)
class ActedLine:
    path: str
    pack: str
    event: str
    emotion: str
    trusted: bool
    effort: int


def event_of(path: str | Path) -> str:
    """'Ooff2.ogg' -> 'Ooff' (the take number dropped)."""
    return re.sub(r"\d+$", "", Path(path).stem)


def acted_lines(voices: Path = VOICES, packs: tuple[str, ...] = PACKS, trusted_only: bool = False) -> list[ActedLine]:
    """The labelled lines of ``packs`` (sorted; empty when the package is not installed)."""
    unknown = [p for p in packs if p not in PACKS]
    if unknown:
        raise ValueError(f"packs {unknown} are not among the packs we may use: {', '.join(PACKS)}")
    out = []
    for pack in packs:
        folder = Path(voices) / pack
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.ogg")):
            label = EVENTS.get(event_of(path))
            if label is None or (trusted_only and not label[1]):
                continue
            out.append(ActedLine(str(path), pack, event_of(path), *label))
    return out

"""Instructions into ordered landmark phrases: "go to the far corner, then the centre" -> ["far corner",
"centre"].

LM-Nav (Shah et al. 2022) asks a large language model for the list of landmarks. Instructions to a
robot farm are short imperative sequences, so a deterministic splitter does that job here, and keeps
``armfarm instruct`` runnable offline and repeatable:

1. split at sequence markers: commas, semicolons, full stops, "then", "and then", "after that",
   "afterwards", "next", "finally", and "and" when a motion verb follows it;
2. strip what is not the place from each part: leading order words ("first", "then", ...), a motion
   verb with its preposition ("go to", "head over to", "visit", "return to", ...), articles and
   politeness ("please").

Each remaining part is one landmark phrase; :mod:`armfarm.language.ground` matches it to a landmark.
"""

from __future__ import annotations

import re

VERBS = ("go", "head", "move", "drive", "walk", "navigate", "travel", "proceed", "continue", "return", "come",
         "get", "run", "make your way", "find your way", "visit", "reach", "stop", "end", "finish")
_VERB = r"(?:" + "|".join(v.replace(" ", r"\s+") for v in sorted(VERBS, key=len, reverse=True)) + r")"
_SPLIT = re.compile(
    r"\s*(?:[,;.!]+|\band\s+then\b|\bthen\b|\bafter\s+that\b|\bafterwards\b|\bnext\b|\bfinally\b|\blastly\b|"
    r"\band\s+(?=(?:please\s+)?" + _VERB + r"\b))\s*", re.IGNORECASE)
_LEADING = re.compile(
    r"^(?:(?:and|first|firstly|start\s+by|begin\s+by|now|please|then|also|finally|lastly|once\s+there)\b[\s,]*)+",
    re.IGNORECASE)
_MOTION = re.compile(
    r"^" + _VERB + r"(?:ing)?\b(?:\s+(?:back|over|on|up|down|straight|along|all\s+the\s+way))*"
    r"(?:\s+(?:to|towards|toward|into|at|in|by|up\s+to|over\s+to|for))?\b\s*", re.IGNORECASE)
_PREPOSITION = re.compile(r"^(?:back\s+)?(?:on\s+to|onto|to|towards|toward|into|over\s+to)\s+", re.IGNORECASE)
_ARTICLE = re.compile(r"^(?:the|a|an|that|this)\s+", re.IGNORECASE)
_TRAILING = re.compile(r"\s*\b(?:please|now|again)\s*$", re.IGNORECASE)


class InstructionError(ValueError):
    """An instruction names no landmark, or names one that is not known."""


def landmark_phrases(instruction: str) -> list[str]:
    """The ordered landmark phrases of ``instruction`` (InstructionError if it has none)."""
    if not isinstance(instruction, str) or not instruction.strip():
        raise InstructionError("the instruction is empty; say where to go, e.g. 'go to the top-left corner, "
                               "then the centre of the maze'")
    phrases = []
    for part in _SPLIT.split(instruction):
        phrase = part.strip()
        for pattern in (_LEADING, _MOTION, _LEADING, _PREPOSITION, _ARTICLE, _TRAILING):
            phrase = pattern.sub("", phrase).strip()
        if phrase:
            phrases.append(phrase.lower())
    if not phrases:
        raise InstructionError(f"found no place in {instruction!r}; name the landmarks to visit, in order")
    return phrases

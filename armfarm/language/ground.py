"""Landmark phrases to landmark names by sentence-embedding similarity (LM-Nav's grounding step, with a
sentence encoder in place of CLIP, since the landmarks here are named, not photographed).

A phrase's score against a landmark is the mean of two similarities from the encoder
(:mod:`armfarm.language.encoder`):

- the cosine similarity of the two texts' sentence embeddings;
- a soft word overlap, BERTScore's F1 (Zhang et al. 2020, Eq. 1-3) over the content words, with each
  word embedded alone: ``P = mean_i max_j cos(p_i, n_j)``, ``R = mean_j max_i cos(p_i, n_j)``,
  ``F = 2PR / (P + R)``. Sentence embeddings of short phrases are sensitive to word order ("the
  corner at the top left" scores 0.916 against "top-right corner", above "top-left corner"); the
  overlap is not.

The phrase goes to the best-scoring landmark when that score is at least ``threshold``; otherwise the
instruction is refused and the closest names are offered.

Sentence encoders place spatial antonyms close together (all-MiniLM-L6-v2, measured: "left"/"right"
0.41, "top"/"bottom" 0.69, "upper"/"top" only 0.64), so "upper left corner" would score 0.914 against
"top-right corner" and 0.904 against "top-left corner". Before embedding, both sides therefore have
their direction words put in one vocabulary (:data:`DIRECTION_WORDS`: upper -> top, east -> right,
center -> centre, ...). Only direction words are rewritten: every other word is left to the encoder.
BENCHMARKS.md gives the grounding accuracy with and without this step.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

import numpy as np

from armfarm.language.parse import InstructionError

DEFAULT_THRESHOLD = 0.5  # BENCHMARKS.md: paraphrases score above it, unrelated places below

DIRECTION_WORDS = {
    "upper": "top", "uppermost": "top", "topmost": "top", "north": "top", "northern": "top", "up": "top",
    "lower": "bottom", "lowermost": "bottom", "bottommost": "bottom", "south": "bottom", "southern": "bottom",
    "down": "bottom",
    "west": "left", "western": "left", "leftmost": "left", "left-hand": "left", "lefthand": "left",
    "east": "right", "eastern": "right", "rightmost": "right", "right-hand": "right", "righthand": "right",
    "center": "centre", "middle": "centre", "central": "centre",
    "northwest": "top left", "north-west": "top left", "northeast": "top right", "north-east": "top right",
    "southwest": "bottom left", "south-west": "bottom left", "southeast": "bottom right",
    "south-east": "bottom right",
}
_WORD = re.compile(r"[a-z]+(?:-[a-z]+)*")
_WHERE = re.compile(r"\s*\b(?:of|in|on|inside)\s+(?:the\s+)?(?:maze|map|arena|room|world)\s*$")


def canonical(text: str) -> str:
    """``text`` in lower case with its direction words in :data:`DIRECTION_WORDS`' vocabulary, other
    hyphens as spaces, and a closing "of the maze" (which every place shares) dropped ("Upper-left
    corner of the maze" -> "top left corner")."""
    out = []
    for word in _WORD.findall(_WHERE.sub("", text.lower())):
        if word in DIRECTION_WORDS:
            out.append(DIRECTION_WORDS[word])
        else:
            out.extend(DIRECTION_WORDS.get(w, w) for w in word.split("-"))
    return " ".join(out)


@dataclasses.dataclass(frozen=True)
class Grounding:
    """A phrase, the landmark it names, its similarity, and the next-best names with theirs."""

    phrase: str
    name: str
    score: float
    alternatives: tuple[tuple[str, float], ...]


STOPWORDS = frozenset({"the", "a", "an", "at", "in", "of", "on", "to", "by", "near", "there", "that", "this"})


def content_words(text: str) -> list[str]:
    return [w for w in text.split() if w not in STOPWORDS] or text.split()


def similarities(phrases: Sequence[str], names: Sequence[str], encoder, canonicalise: bool = True) -> np.ndarray:
    """``(len(phrases), len(names))`` scores: the mean of sentence cosine and soft word-overlap F1."""
    prep = canonical if canonicalise else (lambda t: " ".join(_WORD.findall(t.lower())))
    p_text, n_text = [prep(p) for p in phrases], [prep(n) for n in names]
    sentence = encoder.encode(p_text) @ encoder.encode(n_text).T
    p_words, n_words = [content_words(t) for t in p_text], [content_words(t) for t in n_text]
    vocab = sorted({w for ws in p_words + n_words for w in ws})
    vectors = dict(zip(vocab, encoder.encode(vocab), strict=True))
    overlap = np.zeros_like(sentence)
    for i, pw in enumerate(p_words):
        a = np.stack([vectors[w] for w in pw])
        for j, nw in enumerate(n_words):
            sim = a @ np.stack([vectors[w] for w in nw]).T
            precision, recall = sim.max(1).mean(), sim.max(0).mean()
            overlap[i, j] = 2 * precision * recall / max(precision + recall, 1e-9)
    return (sentence + overlap) / 2


def ground(phrases: Sequence[str], names: Sequence[str], encoder, threshold: float = DEFAULT_THRESHOLD,
           canonicalise: bool = True) -> list[Grounding]:
    """The landmark each phrase names; InstructionError, with the closest names, when any phrase's best
    score is under ``threshold``."""
    if not names:
        raise InstructionError("there are no landmarks to go to; the environment declares none and no "
                               "landmark file was given")
    scores = similarities(phrases, names, encoder, canonicalise)
    out, unknown = [], []
    for phrase, row in zip(phrases, scores, strict=True):
        order = np.argsort(-row, kind="stable")
        ranked = tuple((names[i], round(float(row[i]), 3)) for i in order[:3])
        if row[order[0]] < threshold:
            unknown.append(f"{phrase!r} (closest: " + ", ".join(f"{n!r} {s:.2f}" for n, s in ranked) + ")")
        else:
            out.append(Grounding(phrase, names[order[0]], float(row[order[0]]), ranked[1:]))
    if unknown:
        raise InstructionError(f"unknown place{'s' if len(unknown) > 1 else ''}: " + "; ".join(unknown)
                               + f". Similarity must reach {threshold:.2f}; list the landmarks with --landmarks")
    return out

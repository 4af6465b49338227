"""Instruction text against reference instructions: BLEU-1/4, ROUGE-L, emotion-word accuracy.

- Tokens: lower case, words of letters, digits, hyphens and apostrophes;
  other punctuation is dropped (as coco-caption's PTB tokenizer does).
- BLEU (Papineni et al. 2002), corpus level: clipped n-gram matches and
  candidate n-grams are summed over all sentences before dividing; brevity
  penalty from the total candidate length against, per sentence, the
  reference length closest to the candidate's (ties: the shorter). Smoothing
  for short sentences (Chen & Cherry 2014, method 1): an order with no match
  at all gets 0.1 matches instead of 0, so BLEU-4 of a short corpus is not 0.
- ROUGE-L (Lin 2004) as coco-caption computes it: per sentence, precision =
  max over references of LCS / candidate length, recall = max over references
  of LCS / reference length, F = (1 + b^2) P R / (R + b^2 P) with b = 1.2;
  the corpus score is the mean over sentences.
- Emotion-word accuracy: the emotion an instruction names is the one whose
  word (``EMOTION_WORDS``, whole words, longest first) appears first in it; a
  word listed under two emotions names both. Correct when that includes the
  clip's emotion; an instruction that names no emotion is wrong.
"""

from __future__ import annotations

import math
from collections import Counter

from ..emotions import EMOTION_WORDS, named_emotions, tokenize

SMOOTH_EPSILON = 0.1
ROUGE_BETA = 1.2


def _ngrams(tokens: list[str], n: int) -> Counter:
    return Counter(tuple(tokens[i: i + n]) for i in range(len(tokens) - n + 1))


def _check(candidates: list[str], references: list[list[str]]) -> None:
    if len(candidates) != len(references):
        raise ValueError(f"{len(candidates)} candidates but {len(references)} reference lists")
    if not candidates:
        raise ValueError("no sentences to score")
    for refs in references:
        if isinstance(refs, str) or not refs:
            raise ValueError("each candidate needs a non-empty list of reference sentences")


def bleu(candidates: list[str], references: list[list[str]], max_n: int = 4) -> float:
    """Corpus BLEU-``max_n`` (uniform weights) of candidate sentences, each with a list of references."""
    _check(candidates, references)
    matches = [0] * max_n
    totals = [0] * max_n
    cand_len = ref_len = 0
    for cand, refs in zip(candidates, references):
        c = tokenize(cand)
        rs = [tokenize(r) for r in refs]
        cand_len += len(c)
        ref_len += min((abs(len(r) - len(c)), len(r)) for r in rs)[1]
        for n in range(1, max_n + 1):
            counts = _ngrams(c, n)
            best: Counter = Counter()
            for r in rs:
                best |= _ngrams(r, n)  # max count of each n-gram over the references
            matches[n - 1] += sum(min(k, best[g]) for g, k in counts.items())
            totals[n - 1] += max(len(c) - n + 1, 0)
    if cand_len == 0:
        return 0.0
    log_p = 0.0
    for m, t in zip(matches, totals):
        if t == 0:
            return 0.0  # no candidate is long enough for this order
        log_p += math.log((m if m > 0 else SMOOTH_EPSILON) / t) / max_n
    brevity = 1.0 if cand_len > ref_len else math.exp(1 - ref_len / cand_len)
    return brevity * math.exp(log_p)


def lcs_length(a: list[str], b: list[str]) -> int:
    prev = [0] * (len(b) + 1)
    for x in a:
        row = [0]
        for j, y in enumerate(b):
            row.append(prev[j] + 1 if x == y else max(prev[j + 1], row[j]))
        prev = row
    return prev[-1]


def rouge_l_sentence(candidate: str, references: list[str], beta: float = ROUGE_BETA) -> float:
    c = tokenize(candidate)
    if not c:
        return 0.0
    precisions, recalls = [], []
    for ref in references:
        r = tokenize(ref)
        lcs = lcs_length(c, r)
        precisions.append(lcs / len(c))
        recalls.append(lcs / len(r) if r else 0.0)
    p, r = max(precisions), max(recalls)
    if p == 0 or r == 0:
        return 0.0
    return (1 + beta**2) * p * r / (r + beta**2 * p)


def rouge_l(candidates: list[str], references: list[list[str]]) -> float:
    """Mean sentence ROUGE-L F-measure."""
    _check(candidates, references)
    return sum(rouge_l_sentence(c, r) for c, r in zip(candidates, references)) / len(candidates)


def emotion_accuracy(candidates: list[str], emotions: list[str], words: dict[str, list[str]] | None = None) -> float:
    """Share of candidates whose first emotion word belongs to the clip's emotion."""
    if len(candidates) != len(emotions):
        raise ValueError(f"{len(candidates)} candidates but {len(emotions)} emotions")
    if not candidates:
        raise ValueError("no sentences to score")
    words = EMOTION_WORDS if words is None else words
    unknown = set(emotions) - set(words)
    if unknown:
        raise ValueError(f"unknown emotions {sorted(unknown)}; expected one of {sorted(words)}")
    return sum(e in named_emotions(c, words) for c, e in zip(candidates, emotions)) / len(candidates)

"""A sentence's written words placed on the engine's spoken ones.

An engine times what it speaks (Piper: each group of phonemes between two spaces), and
that is not always one group per written word: espeak-ng says some pairs as one
("in the": ``ɪnðə``, "I am": ``aɪɐm``) and may say one written token as several. :func:`align`
pairs them in order by a small dynamic programme over lengths (a written word's letters
against a group's phonemes), splits a group spoken for several words by their letters,
and joins the groups spoken for one word. docs/captions.md says how exact that is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from voxserve.types import WordTiming

#: Most written words one spoken group may stand for, and the reverse.
MOST_JOINED = 4
#: Cost of each extra word or group in a pairing: one to one is preferred when lengths
#: alone cannot decide.
JOIN_COST = 0.6


def written_words(sentence: str) -> list[str]:
    """The sentence's words: its whitespace-separated tokens without the punctuation
    around them; tokens with no letter or digit are not words."""
    words = []
    for token in sentence.split():
        start, end = 0, len(token)
        while start < end and not token[start].isalnum():
            start += 1
        while end > start and not token[end - 1].isalnum():
            end -= 1
        if start < end:
            words.append(token[start:end])
    return words


def align(sentence: str, spoken: Sequence[WordTiming]) -> tuple[WordTiming, ...]:
    """The written words of ``sentence`` timed by the engine's ``spoken`` words (in order,
    their ``word`` the engine's own spelling: its phonemes)."""
    written = written_words(sentence)
    if not written or not spoken:
        return ()
    letters = [sum(c.isalnum() for c in w) for w in written]
    sounds = [max(1, len(s.word)) for s in spoken]
    ratio = sum(sounds) / max(1, sum(letters))
    pairs = _pairs(letters, sounds, ratio)
    if pairs is None:  # more than MOST_JOINED on one side: spread over the whole sentence
        pairs = [(len(written), len(spoken))]
    timed: list[WordTiming] = []
    i = j = 0
    for n, m in pairs:
        start, end = spoken[j].start, spoken[j + m - 1].end
        share = letters[i : i + n]
        total = sum(share)
        at = start
        for k in range(n):
            step = (end - start) * share[k] / total
            timed.append(WordTiming(written[i + k], at, at + step))
            at += step
        i, j = i + n, j + m
    return tuple(timed)


def _pairs(letters: list[int], sounds: list[int], ratio: float) -> list[tuple[int, int]] | None:
    """The cheapest pairing of consecutive written words with consecutive spoken ones,
    each pair one to many or many to one: a list of (written, spoken) counts."""
    n, m = len(letters), len(sounds)
    inf = math.inf
    cost = [[inf] * (m + 1) for _ in range(n + 1)]
    step: list[list[tuple[int, int]]] = [[(0, 0)] * (m + 1) for _ in range(n + 1)]
    cost[0][0] = 0.0
    moves = [(1, 1)] + [(k, 1) for k in range(2, MOST_JOINED + 1)]
    moves += [(1, k) for k in range(2, MOST_JOINED + 1)]
    for i in range(n + 1):
        for j in range(m + 1):
            here = cost[i][j]
            if here == inf:
                continue
            for a, b in moves:
                if i + a > n or j + b > m:
                    continue
                expected = ratio * sum(letters[i : i + a])
                said = sum(sounds[j : j + b])
                price = here + abs(math.log(expected / said)) + JOIN_COST * (a + b - 2)
                if price < cost[i + a][j + b]:
                    cost[i + a][j + b] = price
                    step[i + a][j + b] = (a, b)
    if cost[n][m] == inf:
        return None
    pairs = []
    i, j = n, m
    while i or j:
        a, b = step[i][j]
        pairs.append((a, b))
        i, j = i - a, j - b
    return pairs[::-1]


def shift(words: Sequence[WordTiming], seconds: float) -> tuple[WordTiming, ...]:
    """``words`` moved ``seconds`` later."""
    return tuple(WordTiming(w.word, w.start + seconds, w.end + seconds) for w in words)

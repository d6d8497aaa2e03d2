"""Word timings of a Piper voice from its phoneme durations: which ids are spaces,
blanks and silence, and when each spoken word starts and ends."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from voxserve.types import WordTiming


class Symbols:
    """What a voice's phoneme ids mean for word timings."""

    def __init__(self, id_map: Mapping[str, Sequence[int]]) -> None:
        def first(name: str) -> int:
            ids = id_map.get(name)
            return int(ids[0]) if ids else -1

        self.space = first(" ")
        self.blank = first("_")
        self.names = {int(ids[0]): name for name, ids in id_map.items() if ids}
        """Each id's phoneme."""
        self.silent = {first("^"), first("$")} | {
            int(ids[0])
            for name, ids in id_map.items()
            if ids and all(unicodedata.category(c)[0] in "PZ" for c in name)
        }
        """Ids that are no sound of a word: sentence start and end, punctuation."""


def word_times(
    ids: Sequence[int],
    durations: npt.NDArray[np.int64] | None,
    symbols: Symbols,
    frame: float,
) -> tuple[WordTiming, ...]:
    """When each spoken word (phonemes between two spaces) starts and ends: from the
    start of its first phoneme to the end of the blank after its last one; the pauses
    of punctuation and the spaces are between words. ``frame``: seconds per duration unit
    (the hop length over the sample rate)."""
    if durations is None:
        return ()
    ends = np.cumsum(durations)
    words: list[WordTiming] = []
    spoken: list[str] = []
    first = last = -1
    for i, pid in enumerate([*ids, symbols.space]):
        if pid == symbols.space:
            if spoken:
                start = float(ends[first] - durations[first]) * frame
                words.append(WordTiming("".join(spoken), start, float(ends[last]) * frame))
            spoken, first, last = [], -1, -1
        elif pid == symbols.blank:
            if last == i - 1 >= 0:
                last = i
        elif pid not in symbols.silent:
            first = i if first < 0 else first
            last = i
            spoken.append(symbols.names.get(pid, "?"))
    return tuple(words)

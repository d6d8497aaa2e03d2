"""Cutting text that arrives in pieces (an LLM's tokens) into segments to speak.

A voice speaks a sentence best whole: its intonation depends on where it ends. So
:class:`StreamSplitter` holds the text it is fed until a sentence ends, by the rules of
:mod:`voxserve.text.split`, and only once the end is certain: a period at the end of what
has arrived may still become "3.5", "Dr. Smith" or "...", so an end counts only when a
letter or digit follows it (or eight characters do, as far as the rules look). A line
break ends a segment at once.

Text is never held for long, though:

- **idle**: nothing new arrived for ``idle_seconds`` (the writer paused, or is done):
  everything buffered is cut, sentence or not;
- **hold**: the oldest buffered character has waited ``hold_seconds`` while text keeps
  trickling in without a sentence end: the buffer is cut at its last clause end (, ; :
  and dashes), else before its last word (which may still be growing);
- **size**: a buffer past ``max_chars`` is cut at the last clause end in its second half,
  else at a space, else hard, as :func:`~voxserve.text.split.split_sentences` caps a
  sentence.

The splitter keeps no clock of its own: every call takes ``now`` (``time.monotonic()``
in the server), and :meth:`StreamSplitter.deadline` says when :meth:`StreamSplitter.poll`
next has something to cut, so a caller waits for text or that deadline, whichever first.
Segments come out stripped, in order; only whitespace between them is lost.
"""

from __future__ import annotations

from collections import deque

from voxserve.text.split import clause_ends, sentence_ends

__all__ = ["StreamSplitter"]

#: Characters after a period that :func:`~voxserve.text.split.sentence_ends` may look at.
LOOKAHEAD_CHARS = 8


def _settled(text: str, end: int) -> bool:
    """Whether a sentence end at ``end`` (or its absence) can no longer change: a letter or
    digit follows it, or as many characters as the rules ever look at."""
    return len(text) >= end + LOOKAHEAD_CHARS or any(c.isalnum() for c in text[end:])


class StreamSplitter:
    """Buffers streamed text and cuts it into segments at settled sentence ends, or after
    a pause, a hold or a size bound (see the module docstring)."""

    def __init__(self, *, idle_seconds: float, hold_seconds: float, max_chars: int) -> None:
        if idle_seconds <= 0 or hold_seconds <= 0:
            raise ValueError("idle_seconds and hold_seconds must be positive")
        if max_chars < 1:
            raise ValueError(f"max_chars must be at least 1, got {max_chars}")
        self.idle_seconds = idle_seconds
        self.hold_seconds = hold_seconds
        self.max_chars = max_chars
        self._text = ""
        self._arrivals: deque[tuple[int, float]] = deque()
        """(end offset in the buffer, arrival time) of each piece still buffered."""
        self._last = 0.0
        """When the latest piece arrived."""

    @property
    def buffered(self) -> str:
        """The text held, not yet cut."""
        return self._text

    def feed(self, delta: str, now: float) -> list[str]:
        """Add ``delta`` (arrived at ``now``); returns the segments it completes."""
        if not delta:
            return []
        self._text += delta
        self._arrivals.append((len(self._text), now))
        self._last = now
        segments: list[str] = []
        start = 0
        for end in self._ends():
            segments.extend(self._segment(start, end))
            start = end
        self._drop(start)
        while len(self._text) > self.max_chars:
            cut = self._size_cut()
            segments.extend(self._segment(0, cut))
            self._drop(cut)
        return segments

    def flush(self) -> list[str]:
        """Everything buffered, as one segment (none if only whitespace)."""
        segments = self._segment(0, len(self._text))
        self._drop(len(self._text))
        return segments

    def deadline(self) -> float | None:
        """When :meth:`poll` will next cut something, if no text arrives before; None
        while nothing is buffered."""
        if not self._text.strip():
            return None
        oldest = self._arrivals[0][1]
        return min(self._last + self.idle_seconds, oldest + self.hold_seconds)

    def poll(self, now: float) -> list[str]:
        """The segments due at ``now`` because of a pause or a hold."""
        due = self.deadline()
        if due is None or now < due:
            return []
        if now >= self._last + self.idle_seconds:
            return self.flush()
        cut = self._hold_cut()
        if cut == 0:
            # One word so far, maybe still growing: the pause after it flushes it.
            self._arrivals = deque([(len(self._text), self._last)])
            return []
        segments = self._segment(0, cut)
        self._drop(cut)
        return segments

    # -- where to cut ---------------------------------------------------------------------

    def _ends(self) -> list[int]:
        """Settled sentence ends and line ends in the buffer, in order."""
        text = self._text
        ends = {end for end in sentence_ends(text) if _settled(text, end)}
        ends.update(i + 1 for i, ch in enumerate(text) if ch == "\n")
        return sorted(ends)

    def _hold_cut(self) -> int:
        """After the last clause end, else before the last word; 0 if neither."""
        text = self._text
        if text[-1].isspace():  # every word is whole
            return len(text)
        clauses = [end for end in clause_ends(text) if text[:end].strip()]
        if clauses:
            return clauses[-1]
        space = len(text.rstrip()) - 1
        while space > 0 and not text[space].isspace():
            space -= 1
        return space if text[:space].strip() else 0

    def _size_cut(self) -> int:
        """Where a buffer over ``max_chars`` is cut, as split_sentences caps a sentence."""
        text, limit = self._text, self.max_chars
        clauses = [e for e in clause_ends(text) if limit // 2 <= e <= limit]
        if clauses:
            return clauses[-1]
        for cut in range(limit, 0, -1):
            if text[cut].isspace():
                return cut
        return limit

    # -- the buffer -------------------------------------------------------------------------

    def _segment(self, start: int, end: int) -> list[str]:
        piece = self._text[start:end].strip()
        return [piece] if piece else []

    def _drop(self, count: int) -> None:
        """Forget the first ``count`` characters (they were cut)."""
        if count <= 0:
            return
        self._text = self._text[count:]
        shifted = ((end - count, at) for end, at in self._arrivals)
        self._arrivals = deque((end, at) for end, at in shifted if end > 0)
        if not self._text.strip():
            self._text = ""
            self._arrivals.clear()

"""Streamed text (``synthesize-chunk`` events) cut into pieces worth speaking.

Home Assistant streams a language model's answer to a streaming TTS program as it is
written, a few words per event. :class:`SentenceBuffer` keeps the text that came and
hands back, as soon as one is complete, the sentences to speak: they end where
:func:`voxserve.text.split.sentence_ends` says a sentence ends *and* some whitespace
follows (a final "." may still turn out to be "3.5" or "Dr. Smith"), so the audio of a
streamed text is that of the same text sent whole. A run of text with no sentence end
is cut at a space once it reaches ``max_chars``, so nothing is held back indefinitely.

A stream whose text starts as an SSML document (``<speak``, docs/ssml.md) is held whole
until the end: XML is parsed whole. Its size is bound by ``max_document`` characters.
"""

from __future__ import annotations

from voxserve.errors import TextTooLong
from voxserve.text.split import sentence_ends
from voxserve.text.ssml import could_be_ssml


class SentenceBuffer:
    """``add(text)`` returns the complete sentences ready to speak, ``finish()`` the rest."""

    def __init__(self, max_chars: int, max_document: int | None = None) -> None:
        self.max_chars = max_chars
        self.max_document = max_document
        self._text = ""
        self.ssml: bool | None = None
        """Whether the stream is an SSML document; None until its first characters tell."""

    @property
    def pending(self) -> str:
        """Text received and not yet handed back."""
        return self._text

    def add(self, text: str) -> str:
        """Take the next piece of text; return the complete sentences in what is pending
        ("" when none is complete yet)."""
        self._text += text
        if self.ssml is None:
            self.ssml = could_be_ssml(self._text)
        if self.ssml is not False:  # a document (or maybe one): spoken whole at the end
            if self.max_document is not None and len(self._text) > self.max_document:
                raise TextTooLong(len(self._text), self.max_document, param="synthesize-chunk")
            return ""
        cut = 0
        for end in sentence_ends(self._text):
            if end < len(self._text):  # whitespace follows (the boundary rules need it)
                cut = end
        if cut == 0 and len(self._text) >= self.max_chars:
            space = self._text.rfind(" ", 0, self.max_chars)
            cut = space if space > 0 else self.max_chars
        ready, self._text = self._text[:cut], self._text[cut:]
        return ready.strip()

    def finish(self) -> str:
        """The rest of the text, at the end of the stream."""
        rest, self._text = self._text, ""
        self.ssml = bool(self.ssml)
        return rest.strip()

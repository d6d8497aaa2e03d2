"""Is this body the reference audio? Bytes first, then decoded samples.

With ``noise_scale: 0, noise_w: 0`` a request alone gives the same bytes every time, in
every format (Opus up to the Ogg serial number, see :func:`comparable`). Under load the
scheduler batches sentences of several requests into one inference call, and the batched
model output differs from the lone one by float rounding: at most 1 in 32,768 on a few
samples, which changes the bytes of every format (and the whole bitstream of mp3, Opus
and AAC). So a body that is not byte-identical is decoded (PyAV, which voxserve already
uses to encode) and compared with the decoded reference: the same audio has the same
length and a correlation above 0.999 (measured: 0.99996 or more), while another text,
sentences in another order or a splice of two requests correlate near 0.
"""

from __future__ import annotations

import io
from typing import Literal

import av
import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.float64]
Verdict = Literal["same", "prefix", "different", "undecodable"]

#: Correlation above which two decodes are the same audio (float rounding only).
SAME_CORRELATION = 0.999


def comparable(fmt: str, body: bytes) -> bytes:
    """``body`` with the parts that differ between identical Opus encodes blanked.

    An Ogg page carries a random stream serial number (bytes 14-17) and a CRC over the
    page (22-25); every other byte of the same request's Opus output is the same.
    """
    if fmt != "opus":
        return body
    out = bytearray(body)
    at = 0
    while at + 27 <= len(out) and out[at : at + 4] == b"OggS":
        segments = out[at + 26]
        lacing = out[at + 27 : at + 27 + segments]
        out[at + 14 : at + 18] = bytes(4)
        out[at + 22 : at + 26] = bytes(4)
        at += 27 + segments + sum(lacing)
    return bytes(out)


def decode(fmt: str, body: bytes) -> Samples:
    """Mono samples of ``body`` in ``fmt`` as floats; a cut body decodes as far as it goes."""
    if fmt == "pcm":
        return _int16(body)
    if fmt == "wav":
        at = body.find(b"data")
        return _int16(body[at + 8 :] if at >= 0 else b"")
    frames = []
    with av.open(io.BytesIO(body), mode="r") as container:
        try:
            for frame in container.decode(audio=0):
                frames.append(frame.to_ndarray().astype(np.float64).reshape(-1))
        except av.error.InvalidDataError:  # a cut stream ends mid-frame
            pass
    return np.concatenate(frames) if frames else np.zeros(0)


def _int16(data: bytes) -> Samples:
    return np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2").astype(np.float64)


def _correlated(a: Samples, b: Samples) -> bool:
    if len(a) == 0 or len(b) == 0:
        return len(a) == len(b)
    if np.array_equal(a, b):
        return True
    if np.std(a) == 0 or np.std(b) == 0:
        return False
    return bool(np.corrcoef(a, b)[0, 1] >= SAME_CORRELATION)


def compare(fmt: str, body: bytes, reference: bytes) -> Verdict:
    """``same`` audio, a ``prefix`` of it (a cut or hung-up body), or ``different``."""
    if comparable(fmt, body) == comparable(fmt, reference):
        return "same"
    try:
        got, want = decode(fmt, body), decode(fmt, reference)
    except (av.error.FFmpegError, ValueError):
        return "undecodable"
    if len(got) > len(want):
        return "different"
    if len(got) < len(want):
        return "prefix" if _correlated(got, want[: len(got)]) else "different"
    return "same" if _correlated(got, want) else "different"

"""Sample-level helpers: int16 conversion, gain, silence and sample-rate conversion.

Audio inside voxserve is always mono float32 in [-1, 1]. These helpers keep that
invariant: anything they return is a 1-D float32 array, except :func:`to_int16`, which
is the one place where samples leave the float domain.

PyAV (FFmpeg) is imported when a resampler first runs, not with this module: a server's
cold start and the common 22.05 kHz wav answers never need it.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from voxserve.errors import InvalidParameter

if TYPE_CHECKING:
    import av

__all__ = ["Resampler", "apply_gain", "resample", "silence", "to_int16"]

#: Full scale for 16-bit PCM. 32767 rather than 32768 so that +1.0 and -1.0 map to
#: symmetric values and +1.0 does not overflow.
_INT16_SCALE = 32767.0


def as_mono_float32(samples: ArrayLike, *, param: str = "samples") -> NDArray[np.float32]:
    """Return ``samples`` as a 1-D float32 array, copying only when the dtype differs.

    Raises:
        InvalidParameter: the array is not one-dimensional (voxserve audio is mono).
    """
    array = np.asarray(samples, dtype=np.float32)
    if array.ndim != 1:
        raise InvalidParameter(
            f"Audio must be mono: a 1-D array of samples, got an array of shape {array.shape}.",
            param=param,
        )
    return array


def to_int16(samples: ArrayLike) -> NDArray[np.int16]:
    """Convert float samples to 16-bit PCM.

    Values are clipped to [-1, 1] first, so loud input saturates instead of wrapping
    around, then scaled by 32767 and rounded to the nearest integer.
    """
    array = as_mono_float32(samples)
    scaled: NDArray[np.float32] = np.clip(array, -1.0, 1.0) * np.float32(_INT16_SCALE)
    return np.rint(scaled).astype(np.int16)


def apply_gain(samples: ArrayLike, volume: float) -> NDArray[np.float32]:
    """Multiply ``samples`` by ``volume`` and clip the result to [-1, 1].

    Raises:
        InvalidParameter: ``volume`` is negative, NaN or infinite.
    """
    if not math.isfinite(volume) or volume < 0:
        raise InvalidParameter(
            f"volume must be a finite number >= 0, got {volume!r}.", param="volume"
        )
    array = as_mono_float32(samples)
    gained = array * np.float32(volume)
    return np.clip(gained, -1.0, 1.0, out=gained)


def silence(seconds: float, sample_rate: int) -> NDArray[np.float32]:
    """Return ``seconds`` of digital silence (float32 zeros) at ``sample_rate``.

    Raises:
        InvalidParameter: ``seconds`` is negative or not finite, or ``sample_rate`` is
            not positive.
    """
    if not math.isfinite(seconds) or seconds < 0:
        raise InvalidParameter(
            f"Silence length must be a finite number of seconds >= 0, got {seconds!r}.",
            param="seconds",
        )
    rate = check_rate(sample_rate)
    return np.zeros(round(seconds * rate), dtype=np.float32)


def check_rate(rate: int, param: str = "sample_rate") -> int:
    """Return ``rate`` as a plain int, or raise if it is not a positive integer.

    numpy integers are accepted (rates often come out of model configs as such); bools
    and floats are not, since they are always a mistake upstream.
    """
    if isinstance(rate, bool) or not isinstance(rate, int | np.integer) or rate <= 0:
        raise InvalidParameter(
            f"{param} must be a positive integer number of samples per second, got {rate!r}.",
            param=param,
        )
    return int(rate)


class Resampler:
    """Streaming sample-rate converter for mono float32 audio.

    Feed consecutive pieces of one signal to :meth:`process` and call :meth:`flush` at
    the end to get the tail that the filter still holds. The concatenated output has
    ``round(len(input) * out_rate / in_rate)`` samples (to within a few samples), the
    same as converting the whole signal at once, because the converter keeps its
    filter state between calls.

    After :meth:`flush` the resampler is ready for a new, unrelated signal.

    When ``in_rate == out_rate`` it is an identity: :meth:`process` returns its input
    (as float32, without copying) and FFmpeg is never involved.
    """

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self._in_rate = check_rate(in_rate, "in_rate")
        self._out_rate = check_rate(out_rate, "out_rate")
        # Created lazily: the identity case never needs one, and after a flush the
        # next signal needs a fresh one (FFmpeg's resampler cannot be restarted).
        self._resampler: av.AudioResampler | None = None
        self._pts = 0

    @property
    def in_rate(self) -> int:
        """Sample rate of the audio given to :meth:`process`."""
        return self._in_rate

    @property
    def out_rate(self) -> int:
        """Sample rate of the audio returned."""
        return self._out_rate

    @property
    def is_identity(self) -> bool:
        """True when input and output rates are equal and samples pass through."""
        return self._in_rate == self._out_rate

    def process(self, samples: ArrayLike) -> NDArray[np.float32]:
        """Convert the next piece of the signal; returns what is ready so far.

        The output may be a little shorter than ``len(samples) * out_rate / in_rate``:
        the filter holds back a few samples until it sees what follows them.
        """
        array = as_mono_float32(samples)
        if self.is_identity or array.size == 0:
            return array if self.is_identity else np.zeros(0, dtype=np.float32)
        import av

        if self._resampler is None:
            self._resampler = av.AudioResampler(format="flt", layout="mono", rate=self._out_rate)
            self._pts = 0
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(array).reshape(1, -1), format="flt", layout="mono"
        )
        frame.sample_rate = self._in_rate
        # Explicit timestamps keep FFmpeg from guessing; the resampler then produces
        # exactly the samples that belong to this stretch of the signal.
        frame.pts = self._pts
        frame.time_base = Fraction(1, self._in_rate)
        self._pts += array.size
        return _frames_to_array(self._resampler.resample(frame))

    def flush(self) -> NDArray[np.float32]:
        """Return the samples still held by the filter and end the current signal."""
        if self._resampler is None:
            return np.zeros(0, dtype=np.float32)
        resampler, self._resampler = self._resampler, None
        return _frames_to_array(resampler.resample(None))


def _frames_to_array(frames: list[av.AudioFrame]) -> NDArray[np.float32]:
    if not frames:
        return np.zeros(0, dtype=np.float32)
    # Packed mono 'flt' frames come back as shape (1, n).
    parts = [np.asarray(frame.to_ndarray(), dtype=np.float32).reshape(-1) for frame in frames]
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def resample(samples: ArrayLike, in_rate: int, out_rate: int) -> NDArray[np.float32]:
    """Convert a whole signal from ``in_rate`` to ``out_rate`` in one call.

    Returns the input unchanged (as float32) when the rates are equal.
    """
    resampler = Resampler(in_rate, out_rate)
    head = resampler.process(samples)
    if resampler.is_identity:
        return head
    tail = resampler.flush()
    return np.concatenate([head, tail]) if tail.size else head

"""Tests for voxserve.audio.dsp: int16 conversion, gain, silence and resampling."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from voxserve.audio import Resampler, apply_gain, resample, silence, to_int16
from voxserve.errors import InvalidParameter

pytestmark = pytest.mark.inprocess


ToneFactory = Callable[..., NDArray[np.float32]]

RATE_PAIRS = [
    (22_050, 48_000),
    (22_050, 16_000),
    (22_050, 8_000),
    (44_100, 22_050),
    (8_000, 48_000),
    (16_000, 24_000),
    (48_000, 44_100),
]


@pytest.fixture
def tone() -> ToneFactory:
    def make(
        sample_rate: int, seconds: float = 2.5, frequency: float = 440.0
    ) -> NDArray[np.float32]:
        t = np.arange(round(seconds * sample_rate)) / sample_rate
        return (0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)

    return make


def dominant_frequency(samples: NDArray[np.float32], sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / sample_rate)[np.argmax(spectrum)])


def test_to_int16_clips_then_scales_by_32767() -> None:
    samples = np.array([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5], dtype=np.float32)
    result = to_int16(samples)
    assert result.dtype == np.int16
    assert result.tolist() == [-32767, -32767, -16384, 0, 16384, 32767, 32767]


def test_to_int16_rejects_multichannel() -> None:
    with pytest.raises(InvalidParameter, match="mono"):
        to_int16(np.zeros((2, 10), dtype=np.float32))


def test_apply_gain_multiplies_and_clips() -> None:
    samples = np.array([-0.8, -0.25, 0.0, 0.25, 0.8], dtype=np.float32)
    result = apply_gain(samples, 2.0)
    assert result.dtype == np.float32
    np.testing.assert_allclose(result, [-1.0, -0.5, 0.0, 0.5, 1.0])
    # The input is left alone: callers may reuse cached audio.
    np.testing.assert_allclose(samples, [-0.8, -0.25, 0.0, 0.25, 0.8])


def test_apply_gain_zero_gives_silence() -> None:
    assert not apply_gain(np.ones(5, dtype=np.float32), 0.0).any()


@pytest.mark.parametrize("volume", [-0.1, float("nan"), float("inf")])
def test_apply_gain_rejects_bad_volume(volume: float) -> None:
    with pytest.raises(InvalidParameter) as info:
        apply_gain(np.zeros(3, dtype=np.float32), volume)
    assert info.value.param == "volume"


def test_silence_is_float32_zeros_of_the_right_length() -> None:
    result = silence(0.25, 22_050)
    assert result.dtype == np.float32
    assert result.shape == (5512,)  # round(5512.5) rounds half to even
    assert not result.any()
    assert silence(0, 22_050).size == 0


@pytest.mark.parametrize(("seconds", "rate"), [(-1.0, 22_050), (float("nan"), 22_050), (1, 0)])
def test_silence_rejects_bad_arguments(seconds: float, rate: int) -> None:
    with pytest.raises(InvalidParameter):
        silence(seconds, rate)


@pytest.mark.parametrize(("in_rate", "out_rate"), RATE_PAIRS)
def test_resampler_piecewise_matches_one_shot(
    tone: ToneFactory, in_rate: int, out_rate: int
) -> None:
    signal = tone(in_rate)
    one_shot = resample(signal, in_rate, out_rate)
    assert one_shot.dtype == np.float32
    assert abs(one_shot.size - round(signal.size * out_rate / in_rate)) <= 2

    resampler = Resampler(in_rate, out_rate)
    cuts = [0, 1, 300, 301, 9_000, signal.size // 2, signal.size]
    pieces = [resampler.process(signal[a:b]) for a, b in itertools.pairwise(cuts)]
    pieces.append(resampler.flush())
    piecewise = np.concatenate(pieces)

    assert abs(piecewise.size - one_shot.size) <= 2
    common = min(piecewise.size, one_shot.size)
    np.testing.assert_allclose(piecewise[:common], one_shot[:common], atol=1e-4)


@settings(max_examples=25, deadline=None)
@given(
    cuts=st.lists(st.integers(min_value=0, max_value=11_025), min_size=0, max_size=8),
    rates=st.sampled_from(RATE_PAIRS),
)
def test_resampler_total_length_holds_for_any_split(
    cuts: list[int], rates: tuple[int, int]
) -> None:
    in_rate, out_rate = rates
    signal = np.random.default_rng(0).uniform(-1, 1, 11_025).astype(np.float32)
    bounds = [0, *sorted(cuts), signal.size]
    resampler = Resampler(in_rate, out_rate)
    total = sum(resampler.process(signal[a:b]).size for a, b in itertools.pairwise(bounds))
    total += resampler.flush().size
    assert abs(total - round(signal.size * out_rate / in_rate)) <= 2


def test_resampler_keeps_the_pitch(tone: ToneFactory) -> None:
    converted = resample(tone(22_050), 22_050, 48_000)
    assert dominant_frequency(converted, 48_000) == pytest.approx(440, abs=1)


def test_resampler_is_reusable_after_flush(tone: ToneFactory) -> None:
    signal = tone(22_050, seconds=0.5)
    resampler = Resampler(22_050, 16_000)
    first = np.concatenate([resampler.process(signal), resampler.flush()])
    second = np.concatenate([resampler.process(signal), resampler.flush()])
    np.testing.assert_array_equal(first, second)


def test_resampler_identity_passes_samples_through(tone: ToneFactory) -> None:
    signal = tone(22_050)
    resampler = Resampler(22_050, 22_050)
    assert resampler.is_identity
    assert resampler.process(signal) is signal
    assert resampler.flush().size == 0
    assert resample(signal, 22_050, 22_050) is signal


def test_resampler_identity_converts_dtype_only() -> None:
    samples = np.array([0.0, 0.5, -0.5])
    result = Resampler(16_000, 16_000).process(samples)
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result, samples)


def test_resampler_empty_input() -> None:
    resampler = Resampler(22_050, 48_000)
    assert resampler.process(np.zeros(0, dtype=np.float32)).size == 0
    assert resampler.flush().size == 0


@pytest.mark.parametrize(("in_rate", "out_rate"), [(0, 16_000), (16_000, -1), (True, 16_000)])
def test_resampler_rejects_bad_rates(in_rate: int, out_rate: int) -> None:
    with pytest.raises(InvalidParameter, match="positive integer"):
        Resampler(in_rate, out_rate)


def test_resampler_accepts_numpy_integer_rates() -> None:
    resampler = Resampler(np.int64(22_050), np.int32(16_000))  # type: ignore[arg-type]
    assert (resampler.in_rate, resampler.out_rate) == (22_050, 16_000)
    assert type(resampler.in_rate) is int

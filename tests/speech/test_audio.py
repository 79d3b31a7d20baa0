"""PCM helpers, resampling, WAV reading and the WER metric, on real signals."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest

from opencic.speech import PiperTextToSpeech
from opencic.speech.audio import (
    CHUNK_BYTES,
    SAMPLE_RATE,
    add_noise,
    bytes_to_ms,
    float32_to_pcm16,
    iter_chunks,
    ms_to_bytes,
    pcm16_to_float32,
    read_wav,
    read_wav_as_capture_pcm,
    resample,
    resample_pcm16,
    silence,
    to_capture_pcm,
    write_wav,
)
from opencic.speech.metrics import normalize_text, number_to_words, word_error_rate


def tone(freq: float, rate: int, seconds: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[int(np.argmax(spectrum))])


def amplitude(samples: np.ndarray) -> float:
    middle = samples[samples.size // 8 : -samples.size // 8]  # skip the filter's edges
    return float(np.sqrt(2 * np.mean(middle.astype(np.float64) ** 2)))


# --------------------------------------------------------------------------- PCM


def test_capture_format_constants() -> None:
    assert SAMPLE_RATE == 16_000
    assert CHUNK_BYTES == 6_400  # 200 ms parts (B-AU-02)
    assert bytes_to_ms(CHUNK_BYTES) == 200.0
    assert ms_to_bytes(200) == CHUNK_BYTES
    assert len(silence(250)) == 8_000


def test_pcm16_float_round_trip_is_exact() -> None:
    ints = np.array([-32768, -12345, -1, 0, 1, 12345, 32767], dtype="<i2")
    samples = pcm16_to_float32(ints.tobytes())
    assert samples.dtype == np.float32
    assert samples.min() == -1.0 and samples.max() < 1.0
    assert float32_to_pcm16(samples) == ints.tobytes()


def test_float_to_pcm16_clips_instead_of_wrapping() -> None:
    out = np.frombuffer(float32_to_pcm16(np.array([1.5, -1.5, 1.0], np.float32)), "<i2")
    assert out.tolist() == [32767, -32768, 32767]


def test_odd_byte_count_is_an_error() -> None:
    with pytest.raises(ValueError, match="even byte count"):
        pcm16_to_float32(b"\x00\x01\x02")


def test_iter_chunks_splits_like_a_device() -> None:
    pcm = bytes(range(256)) * 100  # 25,600 bytes = 4 parts of 200 ms
    parts = list(iter_chunks(pcm + b"\x00\x00"))
    assert [len(p) for p in parts] == [6400, 6400, 6400, 6400, 2]
    assert b"".join(parts) == pcm + b"\x00\x00"


# --------------------------------------------------------------------------- resampling


@pytest.mark.parametrize(("src", "dst"), [(22050, 16000), (44100, 16000), (8000, 16000)])
def test_resample_keeps_pitch_amplitude_and_duration(src: int, dst: int) -> None:
    out = resample(tone(440.0, src), src, dst)
    assert out.size == dst  # one second in, one second out
    assert dominant_frequency(out, dst) == pytest.approx(440.0, abs=2.0)
    assert amplitude(out) == pytest.approx(0.5, rel=0.01)


def test_downsampling_removes_what_the_new_rate_cannot_hold() -> None:
    # 10 kHz is above the new 8 kHz Nyquist: naive decimation would fold it to 6 kHz.
    out = resample(tone(10_000.0, 22050), 22050, 16000)
    assert amplitude(out) < 0.001


def test_resample_identity_and_pcm_variant() -> None:
    pcm = float32_to_pcm16(tone(300.0, 16000, 0.1))
    assert resample_pcm16(pcm, 16000) == pcm
    out = resample_pcm16(float32_to_pcm16(tone(300.0, 22050, 0.5)), 22050)
    assert len(out) == 2 * 8000


def test_tts_output_converts_to_capture_format(piper_tts: PiperTextToSpeech) -> None:
    speech = piper_tts.synthesize("Hello there.")
    pcm = to_capture_pcm(speech)
    assert len(pcm) % 2 == 0
    assert bytes_to_ms(len(pcm)) == pytest.approx(speech.duration_seconds * 1000, abs=1.0)
    assert np.abs(pcm16_to_float32(pcm)).max() > 0.05  # still speech


# --------------------------------------------------------------------------- WAV


def wav_bytes(samples: np.ndarray, rate: int, channels: int, width: int) -> bytes:
    """Encode float samples (frames x channels) as integer PCM WAV of ``width`` bytes."""
    interleaved = samples.reshape(-1)
    if width == 1:
        data = np.clip(np.round(interleaved * 127 + 128), 0, 255).astype(np.uint8).tobytes()
    elif width == 2:
        data = np.round(interleaved * 32767).astype("<i2").tobytes()
    elif width == 3:
        ints = np.round(interleaved * (2**23 - 1)).astype("<i4")
        data = ints.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    else:
        data = np.round(interleaved * (2**31 - 1)).astype("<i4").tobytes()
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("rate", "channels", "width"),
    [(16000, 1, 2), (44100, 2, 2), (48000, 2, 3), (22050, 1, 1), (8000, 1, 4)],
)
def test_any_pcm_wav_becomes_capture_pcm(rate: int, channels: int, width: int) -> None:
    mono = tone(500.0, rate, 0.5, 0.4)
    # Right channel in phase with the left at half level: the mix is 0.75 of the tone.
    frames = np.stack([mono, mono * 0.5], axis=1)[:, :channels] if channels == 2 else mono
    expected = 0.4 * (0.75 if channels == 2 else 1.0)
    pcm = read_wav_as_capture_pcm(io.BytesIO(wav_bytes(frames, rate, channels, width)))
    samples = pcm16_to_float32(pcm)
    assert samples.size == 8000
    assert dominant_frequency(samples, SAMPLE_RATE) == pytest.approx(500.0, abs=3.0)
    assert amplitude(samples) == pytest.approx(expected, rel=0.03)


def test_write_then_read_wav(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pcm = float32_to_pcm16(tone(250.0, 16000, 0.25))
    path = tmp_path / "request.wav"
    write_wav(path, pcm)
    samples, rate = read_wav(path)
    assert rate == 16000
    assert float32_to_pcm16(samples) == pcm
    assert read_wav_as_capture_pcm(path) == pcm


# --------------------------------------------------------------------------- noise


@pytest.mark.parametrize("snr_db", [20.0, 10.0, 5.0])
def test_add_noise_hits_the_requested_snr_over_the_speech(snr_db: float) -> None:
    speech = float32_to_pcm16(tone(300.0, 16000, 1.0, 0.3))
    noisy = add_noise(silence(500) + speech, snr_db, seed=7, reference=speech)
    assert add_noise(silence(500) + speech, snr_db, seed=7, reference=speech) == noisy  # seeded
    clean = pcm16_to_float32(silence(500) + speech)
    noise = pcm16_to_float32(noisy) - clean
    measured = 10 * np.log10(np.mean(pcm16_to_float32(speech) ** 2) / np.mean(noise**2))
    assert measured == pytest.approx(snr_db, abs=0.3)


def test_add_noise_leaves_pure_silence_alone() -> None:
    assert add_noise(silence(100), 10.0) == silence(100)


# --------------------------------------------------------------------------- metrics


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("Set the volume to 5.", "set the volume to five"),
        ("What's the date today?", "whats the date today"),
        ("Set an alarm for 7:30.", "set an alarm for seven thirty"),
        ("Set an alarm for 7.30 a.m.", "set an alarm for seven thirty am"),
        ("Wake me at 6:05", "wake me at six oh five"),
        ("Set a timer for 10 minutes", "set a timer for ten minutes"),
        ("Volume to 25%", "volume to twenty five percent"),
        ("twenty-five", "twenty five"),
        ("on the 3rd at 12", "on the third at twelve"),
    ],
)
def test_normalize_text(text: str, normal: str) -> None:
    assert normalize_text(text) == normal


def test_number_to_words() -> None:
    assert number_to_words(0) == "zero"
    assert number_to_words(42) == "forty two"
    assert number_to_words(1250) == "one thousand two hundred fifty"


def test_word_error_rate() -> None:
    assert word_error_rate([("set the volume to five", "Set the volume to 5.")]) == 0.0
    # one substitution + one deletion over 4 + 4 reference words
    pairs = [
        ("turn off the lights", "turn of the lights"),
        ("play some jazz music", "play jazz music"),
    ]
    assert word_error_rate(pairs) == pytest.approx(2 / 8)

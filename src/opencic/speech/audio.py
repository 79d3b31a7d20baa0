"""PCM helpers for the capture format the device streams and the engines consume.

CIC capture audio is 16 kHz, 16-bit signed little-endian, mono PCM (B-AU-01), sent in
200 ms parts of 6,400 bytes (B-AU-02). The engines (Silero VAD, Whisper) want float32
samples in [-1, 1] at 16 kHz. Our own TTS speaks at 22,050 Hz and WAV files for tests and
``opencic device --wav`` come at any rate and channel count, so this module also converts
those. Everything is numpy only: no scipy or ffmpeg needed for a resampler this small.
"""

from __future__ import annotations

import math
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from .tts import PcmAudio

SAMPLE_RATE = 16_000
SAMPLE_WIDTH = 2  # bytes per sample
CHANNELS = 1
CAPTURE_FORMAT = "AUDIO_L16_RATE_16000_CHANNELS_1"
CHUNK_MS = 200
CHUNK_BYTES = SAMPLE_RATE * SAMPLE_WIDTH * CHUNK_MS // 1000  # 6,400

FloatArray = npt.NDArray[np.float32]

# int16 full scale. Dividing by 32768 maps -32768 exactly to -1.0, which is what Whisper's
# and Silero's own loaders do; the way back clips at 32767 for +1.0.
_INT16_SCALE = 32768.0


def bytes_to_ms(n_bytes: int, sample_rate: int = SAMPLE_RATE) -> float:
    """Duration of ``n_bytes`` of 16-bit mono PCM, in milliseconds."""
    return n_bytes / SAMPLE_WIDTH * 1000.0 / sample_rate


def ms_to_bytes(ms: float, sample_rate: int = SAMPLE_RATE) -> int:
    """Byte count (always whole samples) of ``ms`` milliseconds of 16-bit mono PCM."""
    return round(ms * sample_rate / 1000.0) * SAMPLE_WIDTH


def pcm16_to_float32(pcm: bytes | bytearray | memoryview) -> FloatArray:
    """16-bit little-endian PCM to float32 in [-1, 1).

    An odd byte count is an error rather than silently truncated: on the wire it means
    the client split a sample or sent the wrong format (the server answers 400 for it).
    """
    if len(pcm) % SAMPLE_WIDTH:
        raise ValueError(f"16-bit PCM must have an even byte count, got {len(pcm)}")
    samples = np.frombuffer(pcm, dtype="<i2")
    return (samples.astype(np.float32) / _INT16_SCALE).astype(np.float32, copy=False)


def float32_to_pcm16(samples: npt.ArrayLike) -> bytes:
    """float32 in [-1, 1] to 16-bit little-endian PCM; values outside are clipped."""
    array = np.asarray(samples, dtype=np.float32)
    scaled = np.clip(np.round(array * _INT16_SCALE), -32768, 32767)
    return scaled.astype("<i2").tobytes()


def _kaiser(x: npt.NDArray[np.float64], beta: float) -> npt.NDArray[np.float64]:
    """Continuous Kaiser window on [-1, 1] (0 outside), for fractional tap positions."""
    inside = np.abs(x) < 1.0
    arg = np.sqrt(np.clip(1.0 - x * x, 0.0, None))
    window: npt.NDArray[np.float64] = np.where(inside, np.i0(beta * arg) / np.i0(beta), 0.0)
    return window


# 16 zero crossings each side and Kaiser beta 8.6: about 80 dB stop-band attenuation,
# far below what matters for ASR/VAD, at ~50 taps per output sample for 22050 -> 16000.
_HALF_ZERO_CROSSINGS = 16
_KAISER_BETA = 8.6
# The pass band ends a little before the new Nyquist so the transition band does not
# fold back above it.
_ROLLOFF = 0.94
_MAX_PHASES = 4096  # above this, per-sample kernels cost less memory than a table
_BLOCK = 8192  # output samples per vectorised block; bounds memory to ~block x taps


def resample(samples: npt.ArrayLike, src_rate: int, dst_rate: int) -> FloatArray:
    """Band-limited (windowed-sinc) resampling of a mono float signal.

    Whole-buffer, not streaming: it serves TTS output and WAV files, both complete
    before they are converted. Output length is ``round(len * dst / src)``.
    """
    if src_rate <= 0 or dst_rate <= 0:
        raise ValueError("sample rates must be positive")
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError("resample expects a 1-D (mono) signal")
    if src_rate == dst_rate or x.size == 0:
        return x.copy()
    ratio = dst_rate / src_rate
    n_out = round(x.size * ratio)
    # Downsampling must low-pass below the *new* Nyquist; upsampling keeps the old one.
    scale = min(1.0, ratio)
    cutoff = 0.5 * scale * _ROLLOFF  # cycles per input sample
    half = math.ceil(_HALF_ZERO_CROSSINGS / scale)
    offsets = np.arange(-half + 1, half + 1)
    padded = np.concatenate([np.zeros(half, np.float32), x, np.zeros(half + 1, np.float32)])
    out = np.empty(n_out, dtype=np.float32)
    # Output n sits at input position n * src / dst. With the ratio reduced to up/down,
    # its fractional part takes only ``up`` values (320 for 22050 -> 16000), so the
    # kernel is computed once per phase and indexed, instead of evaluating sinc and
    # Bessel functions for every output sample (~10x faster).
    g = math.gcd(src_rate, dst_rate)
    up, down = dst_rate // g, src_rate // g
    table = None
    if up <= _MAX_PHASES:
        phase_pos = np.arange(up, dtype=np.float64) / up
        dist = phase_pos[:, None] - offsets[None, :]
        table = (
            2.0 * cutoff * np.sinc(2.0 * cutoff * dist) * _kaiser(dist / half, _KAISER_BETA)
        ).astype(np.float32)
    for start in range(0, n_out, _BLOCK):
        n = np.arange(start, min(start + _BLOCK, n_out), dtype=np.int64)
        base = (n * down) // up
        idx = base[:, None] + offsets[None, :]
        if table is not None:
            kernel = table[(n * down) % up]
        else:
            dist = (n * down / up)[:, None] - idx
            kernel = (
                2.0 * cutoff * np.sinc(2.0 * cutoff * dist) * _kaiser(dist / half, _KAISER_BETA)
            ).astype(np.float32)
        out[start : start + n.size] = np.einsum("ij,ij->i", kernel, padded[idx + half])
    return out


def resample_pcm16(pcm: bytes, src_rate: int, dst_rate: int = SAMPLE_RATE) -> bytes:
    """16-bit mono PCM at ``src_rate`` to 16-bit mono PCM at ``dst_rate``."""
    if src_rate == dst_rate:
        return bytes(pcm)
    return float32_to_pcm16(resample(pcm16_to_float32(pcm), src_rate, dst_rate))


def to_capture_pcm(audio: PcmAudio) -> bytes:
    """TTS output (any rate, mono int16) as capture-format PCM (16 kHz mono int16)."""
    return resample_pcm16(audio.samples, audio.sample_rate, SAMPLE_RATE)


def _decode_frames(frames: bytes, sample_width: int) -> FloatArray:
    """Interleaved WAV sample bytes to float32 in [-1, 1), for the PCM widths WAV allows."""
    if sample_width == 1:  # 8-bit WAV is unsigned, centred on 128
        return ((np.frombuffer(frames, np.uint8).astype(np.float32) - 128.0) / 128.0).astype(
            np.float32
        )
    if sample_width == 2:
        return np.frombuffer(frames, "<i2").astype(np.float32) / np.float32(_INT16_SCALE)
    if sample_width == 3:  # no numpy dtype: widen each 3-byte sample to 4, sign-extended
        raw = np.frombuffer(frames, np.uint8).reshape(-1, 3)
        wide = np.zeros((raw.shape[0], 4), np.uint8)
        wide[:, 1:] = raw  # little-endian: the low byte stays 0, i.e. value << 8
        return np.ascontiguousarray(wide).view("<i4").ravel().astype(np.float32) / np.float32(
            2.0**31
        )
    if sample_width == 4:
        return np.frombuffer(frames, "<i4").astype(np.float32) / np.float32(2.0**31)
    raise ValueError(f"unsupported WAV sample width: {sample_width} bytes")


def read_wav(source: str | Path | BinaryIO) -> tuple[FloatArray, int]:
    """A PCM WAV file as mono float32 and its sample rate (channels are averaged).

    Uses the stdlib ``wave``: integer PCM of 8/16/24/32 bits. Float and compressed WAVs
    raise ``wave.Error``; convert those first.
    """
    with wave.open(str(source) if isinstance(source, Path) else source, "rb") as wav:
        channels = wav.getnchannels()
        width = wav.getsampwidth()
        rate = wav.getframerate()
        frames = wav.readframes(wav.getnframes())
    samples = _decode_frames(frames, width)
    usable = samples.size - samples.size % channels  # a truncated last frame is dropped
    if channels > 1:
        samples = samples[:usable].reshape(-1, channels).mean(axis=1, dtype=np.float32)
    return samples.astype(np.float32, copy=False), rate


def read_wav_as_capture_pcm(source: str | Path | BinaryIO) -> bytes:
    """Any PCM WAV as capture-format PCM: 16 kHz, 16-bit little-endian, mono."""
    samples, rate = read_wav(source)
    return float32_to_pcm16(resample(samples, rate, SAMPLE_RATE))


def write_wav(target: str | Path | BinaryIO, pcm: bytes, sample_rate: int = SAMPLE_RATE) -> None:
    """Write 16-bit mono PCM as a WAV file."""
    with wave.open(str(target) if isinstance(target, Path) else target, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(SAMPLE_WIDTH)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm)


def iter_chunks(pcm: bytes, size: int = CHUNK_BYTES) -> Iterator[bytes]:
    """``pcm`` in parts of ``size`` bytes (the last may be shorter), as a device sends it."""
    if size <= 0:
        raise ValueError("chunk size must be positive")
    view = memoryview(pcm)
    for start in range(0, len(pcm), size):
        yield bytes(view[start : start + size])


def silence(ms: float, sample_rate: int = SAMPLE_RATE) -> bytes:
    """Digital silence of ``ms`` milliseconds as 16-bit mono PCM."""
    return b"\x00" * ms_to_bytes(ms, sample_rate)


def add_noise(pcm: bytes, snr_db: float, *, seed: int = 0, reference: bytes | None = None) -> bytes:
    """``pcm`` with white Gaussian noise at ``snr_db`` relative to the speech's power.

    The power is measured over ``reference`` (the speech alone) when given, otherwise over
    the non-silent samples of ``pcm``, so leading/trailing silence does not dilute it and
    the SNR means what it says over the spoken part. Seeded: benchmarks and tests repeat.
    """
    samples = pcm16_to_float32(pcm)
    ref = pcm16_to_float32(reference) if reference is not None else samples[samples != 0]
    power = float(np.mean(ref.astype(np.float64) ** 2)) if ref.size else 0.0
    if power == 0.0:
        return bytes(pcm)
    noise_rms = math.sqrt(power / (10.0 ** (snr_db / 10.0)))
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(samples.size).astype(np.float32) * np.float32(noise_rms)
    return float32_to_pcm16(samples + noise)


def trim_silence(pcm: bytes, threshold_dbfs: float = -40.0, frame_ms: float = 10.0) -> bytes:
    """``pcm`` without its quiet head and tail (frames whose RMS is below the threshold).

    TTS output starts and ends with tens to hundreds of milliseconds of near-silence;
    tests and benchmarks trim it so that "where the speech ends" means the sound, not the
    buffer. Returns b"" when nothing reaches the threshold.
    """
    samples = pcm16_to_float32(pcm)
    frame = max(1, int(SAMPLE_RATE * frame_ms / 1000))
    usable = samples.size - samples.size % frame
    if usable == 0:
        return b""
    rms = np.sqrt(np.mean(samples[:usable].reshape(-1, frame).astype(np.float64) ** 2, axis=1))
    loud = np.nonzero(rms >= 10.0 ** (threshold_dbfs / 20.0))[0]
    if loud.size == 0:
        return b""
    start, end = int(loud[0]) * frame, min(samples.size, (int(loud[-1]) + 1) * frame)
    return bytes(pcm[start * SAMPLE_WIDTH : end * SAMPLE_WIDTH])

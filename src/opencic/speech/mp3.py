"""MP3 encoding of synthesised speech (Speak carries ``format: AUDIO_MPEG``, B-AU-06).

lameenc (LAME, LGPL-3.0-or-later) encodes in-process; one encoder per call because a
LAME encoder is stateful and cannot be shared between threads.
"""

from __future__ import annotations

import lameenc  # type: ignore[import-not-found]  # compiled module, no stubs

from .tts import PcmAudio

DEFAULT_BITRATE_KBPS = 48

# LAME's algorithm quality, 0 (best, slowest) .. 9 (worst, fastest). 5 is LAME's own
# default; 2 took about twice as long on our short answers for a small bit-rate budget.
DEFAULT_QUALITY = 5


def encode_mp3(
    pcm: PcmAudio, bitrate_kbps: int = DEFAULT_BITRATE_KBPS, *, quality: int = DEFAULT_QUALITY
) -> bytes:
    """Encode mono int16 PCM as constant-bit-rate MP3 at the PCM's own sample rate.

    The voice's 22050 Hz is kept (no resampling): that makes MPEG-2 Layer III frames,
    which every MP3 decoder plays.
    """
    if pcm.sample_rate <= 0:
        raise ValueError("sample_rate must be positive")
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(bitrate_kbps)
    encoder.set_in_sample_rate(pcm.sample_rate)
    encoder.set_out_sample_rate(pcm.sample_rate)
    encoder.set_channels(1)
    encoder.set_quality(quality)
    # Drop a dangling odd byte rather than let LAME read past a sample boundary.
    samples = pcm.samples[: len(pcm.samples) - len(pcm.samples) % 2]
    return bytes(encoder.encode(samples)) + bytes(encoder.flush())

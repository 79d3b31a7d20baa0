"""Voice turns sans HTTP: real Silero VAD, real Whisper tiny.en, speech from our own voice.

The audio is fed in 200 ms parts exactly as the server hands it over (B-AU-02).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from support.voice import spoken, utterance

from opencic.assistant import Assistant, DeviceContext, IntentRecognizer, Reply
from opencic.assistant.voice import DIDNT_HEAR, SpeechInput, VoiceTurn
from opencic.protocol.errors import BadRequest
from opencic.protocol.messages import Directive, Event
from opencic.protocol.schema import validate_directive_strict
from opencic.speech import SpeechSynthesizer
from opencic.speech.asr import RecognitionSession, SpeechRecognizer, Transcript
from opencic.speech.audio import CAPTURE_FORMAT, CHUNK_BYTES, iter_chunks, silence
from opencic.speech.metrics import normalize_text

DEVICE = DeviceContext("device-1", "OpenCIC-Simulator/0.1.0 (Linux; x86_64)")
DIALOG = "0b7e0c36-43f4-4f4e-9a55-2f0b1c9e6d11"


@pytest.fixture(scope="module")
def speech_input() -> Iterator[SpeechInput]:
    engines = SpeechInput.default(max_audio_seconds=8.0)
    asyncio.run(engines.load())
    yield engines
    engines.close()


@pytest.fixture(scope="module")
def voice_assistant(
    synthesizer: SpeechSynthesizer,
    recognizer: IntentRecognizer,
    speech_input: SpeechInput,
    fixed_now: datetime,
) -> Assistant:
    return Assistant(
        synthesizer, clock=lambda: fixed_now, intents=recognizer, speech_input=speech_input
    )


def recognize_event(**payload: Any) -> Event:
    body: dict[str, Any] = {"lang": "en", "profile": "CLOSE_TALK", "format": CAPTURE_FORMAT}
    body.update(payload)
    body = {k: v for k, v in body.items() if v is not None}
    return Event.create("SpeechRecognizer", "Recognize", body, dialog_request_id=DIALOG)


async def stream(turn: VoiceTurn, pcm: bytes, *, stop_early: bool = False) -> int | None:
    """Feed ``pcm`` in 200 ms parts; the index of the part after which StopCapture was due
    (None if never). ``stop_early``: the device stops at StopCapture (B-SR-02)."""
    stopped_at = None
    for index, part in enumerate(iter_chunks(pcm, CHUNK_BYTES), start=1):
        if turn.feed(part, index):
            assert stopped_at is None, "StopCapture is due only once"
            stopped_at = index
            if stop_early:
                break
        await asyncio.sleep(0)
    turn.end_of_audio()
    return stopped_at


def names(reply: Reply) -> list[str]:
    return [d.qualified_name for d in reply.directives]


def test_stop_capture_is_due_at_the_end_of_speech_and_the_answer_follows(
    voice_assistant: Assistant,
) -> None:
    pcm = utterance("what time is it", trail_ms=2000)

    async def go() -> tuple[VoiceTurn, int | None, Reply]:
        turn = voice_assistant.start_voice(recognize_event(), DEVICE)
        stopped_at = await stream(turn, pcm)
        return turn, stopped_at, await turn.reply()

    turn, stopped_at, reply = asyncio.run(go())
    parts = -(-len(pcm) // CHUNK_BYTES)
    speech_end_part = (300 + len(spoken("what time is it")) / 32) / 200
    # The 0.6 s silence rule fires within a few parts of the end of speech, long before
    # the 2 s of trailing silence are over.
    assert stopped_at is not None and stopped_at < parts - 3
    assert speech_end_part + 2 <= stopped_at <= speech_end_part + 6
    stop = turn.stop_capture()
    validate_directive_strict(stop)
    assert stop.qualified_name == "SpeechRecognizer.StopCapture"
    assert stop.dialog_request_id == DIALOG and stop.payload == {}  # B-SR-01
    assert turn.transcript is not None and "time" in turn.transcript.text.lower()
    assert names(reply) == ["SpeechSynthesizer.Speak", "Clova.RenderText"]
    assert reply.directives[1].payload["text"].startswith("It's")
    assert all(d.dialog_request_id == DIALOG for d in reply.directives)  # B-DI-07
    summary = turn.summary()
    assert summary["outcome"] == "SpeechEnded"
    assert summary["ignored_audio_ms"] > 0  # B-AU-05: the rest was not processed
    assert summary["speech_end_ms"] < summary["endpoint_ms"] <= summary["audio_ms"]


def test_volume_by_voice_is_a_set_value(voice_assistant: Assistant) -> None:
    async def go() -> Reply:
        turn = voice_assistant.start_voice(recognize_event(), DEVICE)
        assert await stream(turn, utterance("set the volume to five"), stop_early=True)
        return await turn.reply()

    reply = asyncio.run(go())
    assert names(reply) == ["DeviceControl.SetValue"]  # B-SR-11: no Speak
    assert reply.directives[0].payload["value"] == "5"
    assert reply.directives[0].dialog_request_id == DIALOG


def test_device_that_stops_early_is_answered_anyway(voice_assistant: Assistant) -> None:
    """Upload ends right after the speech: no end of speech seen, recognise what came."""

    async def go() -> tuple[int | None, Reply]:
        turn = voice_assistant.start_voice(recognize_event(), DEVICE)
        stopped = await stream(turn, utterance("what time is it", trail_ms=100))
        return stopped, await turn.reply()

    stopped, reply = asyncio.run(go())
    assert stopped is None
    assert reply.directives[1].payload["text"].startswith("It's")


@pytest.mark.parametrize("seconds", [6.0, 1.0])
def test_silence_only_gets_an_apology(voice_assistant: Assistant, seconds: float) -> None:
    """6 s: the no-speech timeout stops capture; 1 s: the device gave up first."""

    async def go() -> tuple[int | None, Reply]:
        turn = voice_assistant.start_voice(recognize_event(), DEVICE)
        stopped = await stream(turn, silence(seconds * 1000))
        return stopped, await turn.reply()

    stopped, reply = asyncio.run(go())
    assert (stopped is not None) == (seconds > 5)
    assert names(reply) == ["SpeechSynthesizer.Speak", "Clova.RenderText"]
    assert reply.directives[1].payload["text"] == DIDNT_HEAR


def test_missing_lang_falls_back_to_english(voice_assistant: Assistant) -> None:
    turn = voice_assistant.start_voice(recognize_event(lang=None, format=None), DEVICE)
    assert turn.language == "en"  # ambiguity #24


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        ({"format": "AUDIO_L16_RATE_8000_CHANNELS_1"}, "format"),
        ({"lang": "ko"}, "lang"),
        ({"lang": 5}, "lang"),
    ],
)
def test_bad_format_or_lang_is_refused(
    voice_assistant: Assistant, payload: dict[str, Any], words: str
) -> None:
    with pytest.raises(BadRequest, match=words) as info:
        voice_assistant.start_voice(recognize_event(**payload), DEVICE)
    assert info.value.status == 400


def test_bad_audio_is_refused(voice_assistant: Assistant) -> None:
    async def go() -> None:
        # An odd byte count in one part (B-AU-01): found when the next part begins.
        turn = voice_assistant.start_voice(recognize_event(), DEVICE)
        turn.feed(b"\x00" * 6399, 1)
        with pytest.raises(BadRequest, match="odd"):
            turn.feed(b"\x00" * 6400, 2)
        turn.cancel()
        # ... or when the body ends.
        turn = voice_assistant.start_voice(recognize_event(), DEVICE)
        turn.feed(b"\x00" * 101, 1)
        with pytest.raises(BadRequest, match="odd"):
            turn.end_of_audio()
        # No audio part at all.
        turn = voice_assistant.start_voice(recognize_event(), DEVICE)
        with pytest.raises(BadRequest, match="no audio"):
            turn.end_of_audio()
        # More than max_audio_seconds (8 s here): speech-like noise never ends.
        turn = voice_assistant.start_voice(recognize_event(), DEVICE)
        speech = spoken("what time is it")
        noisy = speech * (9 * 32000 // len(speech) + 1)  # over 9 s
        with pytest.raises(BadRequest, match="longer than the 8 s"):
            for index, part in enumerate(iter_chunks(noisy, CHUNK_BYTES), start=1):
                turn.feed(part, index)
        turn.cancel()

    asyncio.run(go())


def test_speech_input_is_required() -> None:
    class NoSpeech:
        async def speak_mp3(self, text: str) -> bytes:
            return b""

    with pytest.raises(BadRequest, match="not enabled"):
        Assistant(NoSpeech()).start_voice(recognize_event(), DEVICE)


# --------------------------------------------------------------------------- interim directives
# ShowRecognizedText (B-SR-03) and KeepRecording (B-SR-04) go to ``turn.interim`` (the
# server's downchannel push). These turns are paced like a device: partial decodes take
# wall time, and a turn fed all at once would be over before any returned.

LONG_REQUEST = (
    "what's the weather like tomorrow in the kitchen and in the living room "
    "and what time is it in tokyo"
)


def interim_engines(base: SpeechInput, **options: Any) -> SpeechInput:
    """The module's loaded models with other speech settings."""
    return SpeechInput(base.recognizer, base.vad, max_audio_seconds=base.max_audio_seconds,
                       **options)


async def paced(turn: VoiceTurn, pcm: bytes, sent: list[Directive], speed: float = 2.0) -> None:
    """Feed 200 ms parts every 0.2 / ``speed`` s; StopCapture joins ``sent`` in order."""
    for index, part in enumerate(iter_chunks(pcm, CHUNK_BYTES), start=1):
        if turn.feed(part, index):
            sent.append(turn.stop_capture())
            break  # B-SR-02
        await asyncio.sleep(0.2 / speed)
    turn.end_of_audio()


AUDIO_AT: dict[str, float] = {}  # messageId -> audio ms fed when it was sent


def words(text: str) -> list[str]:
    return normalize_text(text).split()


def run_interim_turn(
    engines: SpeechInput, voice_assistant: Assistant, pcm: bytes, speed: float = 2.0
) -> tuple[VoiceTurn, list[Directive], Reply]:
    async def go() -> tuple[VoiceTurn, list[Directive], Reply]:
        sent: list[Directive] = []
        turn = VoiceTurn(voice_assistant, engines, recognize_event(), DEVICE, "en")

        def sink(directive: Directive) -> None:
            sent.append(directive)
            AUDIO_AT[directive.header.message_id] = turn.timings.audio_ms

        turn.interim = sink
        await paced(turn, pcm, sent, speed)
        return turn, sent, await turn.reply()

    return asyncio.run(go())


def test_partial_results_come_before_stop_capture_and_lead_to_the_final(
    voice_assistant: Assistant, speech_input: SpeechInput
) -> None:
    engines = interim_engines(speech_input, partial_results=True, keep_recording_ms=0)
    # Real time: ~5 s of speech, one decode per second of it when the machine is idle
    # (fewer when decodes are slow: at least the first one is always in time).
    turn, sent, reply = run_interim_turn(engines, voice_assistant, utterance(LONG_REQUEST),
                                         speed=1.0)
    kinds = [d.qualified_name for d in sent]
    assert kinds[-1] == "SpeechRecognizer.StopCapture"  # nothing after it (rule 4)
    partials = [d for d in sent if d.header.name == "ShowRecognizedText"]
    assert partials, kinds
    for d in partials:
        validate_directive_strict(d)
        assert d.dialog_request_id == DIALOG  # B-SR-03, B-DC-08
    texts = [d.payload["text"] for d in partials]
    assert len(set(texts)) == len(texts)  # only changed text is shown
    final = words(turn.transcript.text if turn.transcript else "")
    for text in texts:  # each is the final's beginning, give or take the word being cut
        said = words(text)
        keep = max(1, len(said) - 1)
        assert said[:keep] == final[:keep], (text, final)
    assert len(words(texts[-1])) >= len(words(texts[0]))
    summary = turn.summary()
    assert summary["partials_shown"] == len(partials)
    assert summary["partial_decodes"] >= len(partials)
    assert reply.directives  # and the request is answered as usual


def test_partial_results_are_off_by_default(
    voice_assistant: Assistant, speech_input: SpeechInput
) -> None:
    assert not speech_input.partial_results  # B-SR-03: off unless arranged
    turn, sent, _ = run_interim_turn(
        interim_engines(speech_input, keep_recording_ms=0), voice_assistant,
        utterance(LONG_REQUEST),
    )
    assert [d.header.name for d in sent] == ["StopCapture"]
    assert "partials_shown" not in turn.summary()


def test_keep_recording_while_a_long_request_goes_on(
    voice_assistant: Assistant, speech_input: SpeechInput
) -> None:
    """B-SR-04: after 1.5 s of speech without an end, and every 1.5 s after that; not
    during the lead-in silence (nothing is being recognised yet)."""
    engines = interim_engines(speech_input, keep_recording_ms=1500)
    turn, sent, _ = run_interim_turn(engines, voice_assistant,
                                     utterance(LONG_REQUEST, lead_ms=2000))
    names_sent = [d.header.name for d in sent]
    keeps = [d for d in sent if d.header.name == "KeepRecording"]
    assert names_sent == ["KeepRecording"] * len(keeps) + ["StopCapture"]
    summary = turn.summary()
    start, end = summary["speech_start_ms"], summary["endpoint_ms"]
    assert start >= 1900  # the lead-in silence did not count
    # One per 1.5 s from the start of speech until the end-of-speech rule fired
    # (~4.2 s of speech + the 0.6 s rule), at the first 200 ms part boundary after each.
    assert len(keeps) == int((end - start) // 1500) >= 2
    for n, d in enumerate(keeps, start=1):
        validate_directive_strict(d)
        assert d.dialog_request_id == DIALOG and d.payload == {}
        assert 0 <= AUDIO_AT[d.header.message_id] - (start + n * 1500) < 200
    assert summary["keep_recording"] == len(keeps)


def test_no_keep_recording_for_a_short_request_or_when_nobody_speaks(
    voice_assistant: Assistant, speech_input: SpeechInput
) -> None:
    engines = interim_engines(speech_input, keep_recording_ms=1500)
    _, sent, _ = run_interim_turn(engines, voice_assistant, utterance("what time is it"))
    assert [d.header.name for d in sent] == ["StopCapture"]
    fast = interim_engines(speech_input, keep_recording_ms=1500, no_speech_timeout_ms=2000)
    _, sent, reply = run_interim_turn(fast, voice_assistant, silence(3000))
    assert [d.header.name for d in sent] == ["StopCapture"]
    assert reply.directives[1].payload["text"] == DIDNT_HEAR


class StreamingSession:
    """A stand-in for a true streaming engine: partials are a by-product of ``feed``."""

    partial_interval_ms = 0.0  # ask after every part

    def __init__(self, text: str) -> None:
        self._words = text.split()
        self._parts = 0
        self.language = "en"
        self.audio_ms = 0.0

    def feed(self, pcm: bytes) -> None:
        self._parts += 1
        self.audio_ms += len(pcm) / 32

    def partial(self) -> str:
        return " ".join(self._words[: self._parts // 3])

    def finish(self) -> Transcript:
        return Transcript(" ".join(self._words), 0.9, -0.1, 0.0, self.audio_ms, 1.0, "en")

    async def apartial(self) -> str:
        return self.partial()

    async def afinish(self) -> Transcript:
        return self.finish()

    async def aspeculate(self) -> Transcript:
        return self.finish()

    def adopt(self, transcript: Transcript) -> None:
        pass


class StreamingRecognizer:
    languages = frozenset({"en"})

    def start(self, language: str = "en", *, hint: str | None = None) -> StreamingSession:
        return StreamingSession("what time is it now please")


def test_a_streaming_engine_plugs_in_and_gives_a_partial_per_new_word(
    voice_assistant: Assistant, speech_input: SpeechInput
) -> None:
    engines = SpeechInput(StreamingRecognizer(), speech_input.vad, partial_results=True,
                          keep_recording_ms=0)
    assert isinstance(engines.recognizer, SpeechRecognizer)
    assert isinstance(engines.recognizer.start("en"), RecognitionSession)
    _, sent, reply = run_interim_turn(engines, voice_assistant,
                                      utterance(LONG_REQUEST, trail_ms=1000))
    texts = [d.payload["text"] for d in sent if d.header.name == "ShowRecognizedText"]
    assert texts and all(b.startswith(a) for a, b in itertools.pairwise(texts))
    assert len(texts) == len(set(texts))  # one per new word, not one per part
    assert sent[-1].header.name == "StopCapture"
    assert reply.directives[1].payload["text"].startswith("It's")

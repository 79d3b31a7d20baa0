"""Recognize.initiator end to end (B-AU-04, issue 4): the wake word and its 300 ms
pre-roll are not part of the request; press-and-hold ends by release, not by silence;
wrong wake-word indices are a clear 400. Speech is synthesised at test time."""

from __future__ import annotations

import uuid
from typing import Any

from support.cic import exception_of, with_device
from support.rawh2 import RawH2
from support.voice import spoken, utterance
from support.voice_wire import VoiceResult, names, run, stream_voice

from opencic.speech.audio import silence

PRE_ROLL = 4800  # samples, 300 ms


def _wake(start: int, end: int) -> dict[str, Any]:
    return {"type": "WAKEWORD", "inputSource": "SELF", "payload": {
        "deviceUUID": "dev-uuid", "wakeWord": {"name": "clova", "confidence": 0.9, "indices": {
            "startIndexInSamples": start, "endIndexInSamples": end}}}}


def test_the_wake_word_is_not_part_of_the_request(cic_server: Any) -> None:
    # A "wake word" the intent templates do not skip, so only the indices can remove it.
    wake_word = spoken("pineapple")
    pcm = silence(300) + wake_word + silence(150) + utterance("what time is it", lead_ms=0)
    end = PRE_ROLL + len(wake_word) // 2
    results = {}
    for label, initiator in (("indices", _wake(PRE_ROLL, end)),
                             ("tap", {"type": "TAP", "inputSource": "SELF"})):
        dialog = str(uuid.uuid4())

        async def go(client: RawH2, token: str, sid: int, initiator: Any = initiator,
                     dialog: str = dialog) -> VoiceResult:
            return await stream_voice(client, token, sid, pcm, dialog, initiator=initiator)

        results[label] = run(with_device(cic_server, go))
    answer = results["indices"]
    assert answer.status == 200 and answer.stop_capture is not None
    assert names(answer.directives) == ["SpeechSynthesizer.Speak", "Clova.RenderText"]
    assert answer.directives[1]["payload"]["text"].startswith("It's")
    # The same audio with a TAP initiator: "pineapple what time is it" is no request.
    tap = results["tap"]
    assert tap.status == 200
    assert not tap.directives[1]["payload"]["text"].startswith("It's")


def test_press_and_hold_is_ended_by_release_not_by_a_pause(cic_server: Any) -> None:
    # A 1.2 s pause mid-request: a TAP request ends there (the 600 ms rule), a held one
    # goes on until the upload ends.
    pcm = (silence(300) + spoken("set the volume") + silence(1200) + spoken("to five")
           + silence(400))
    dialog = str(uuid.uuid4())

    async def go(client: RawH2, token: str, sid: int) -> VoiceResult:
        return await stream_voice(client, token, sid, pcm, dialog,
                                  initiator={"type": "PRESS_AND_HOLD", "inputSource": "SELF"})

    held = run(with_device(cic_server, go))
    assert held.stop_capture is None  # the button's release ends it
    assert held.status == 200
    assert names(held.directives) == ["DeviceControl.SetValue"]
    assert held.directives[0]["payload"] == {"target": "volume", "value": "5"}

    dialog = str(uuid.uuid4())

    async def tap(client: RawH2, token: str, sid: int) -> VoiceResult:
        return await stream_voice(client, token, sid, pcm, dialog, stop_on_capture=True,
                                  initiator={"type": "TAP", "inputSource": "SELF"})

    tapped = run(with_device(cic_server, tap))
    assert tapped.stop_capture is not None  # ended at the pause
    assert "DeviceControl.SetValue" not in names(tapped.directives)


def test_wrong_wake_word_indices_are_a_clear_400(cic_server: Any) -> None:
    dialog = str(uuid.uuid4())

    async def go(client: RawH2, token: str, sid: int) -> VoiceResult:
        return await stream_voice(client, token, sid, utterance("hello", trail_ms=300), dialog,
                                  initiator=_wake(9000, 4800))

    result = run(with_device(cic_server, go))
    assert result.status == 400
    assert "end before they start" in exception_of(result.response)["description"]

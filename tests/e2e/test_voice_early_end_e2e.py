"""early_endpoint_ms over real sockets: a complete request ends before the silence rule.

The server here has a long silence rule (2 s) so that the speculative decode at the
pause is surely in before it, even on a loaded machine: whether a request ends early
then depends only on what was said, not on how fast the decode ran. Paced in real time
(200 ms parts every 200 ms), like a device.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from support.cic import with_device
from support.rawh2 import RawH2
from support.server import ServerHandle, serving
from support.voice import utterance
from support.voice_wire import VoiceResult, names, run, stream_voice, voice_log_lines

RULE_MS = 2000


@pytest.fixture(scope="module")
def slow_rule_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    with serving(tmp_path_factory.mktemp("early-end"),
                          env={"OPENCIC_VAD_SILENCE_MS": str(RULE_MS)}) as handle:
        yield handle


@pytest.mark.parametrize(("text", "early"), [
    ("what time is it", True),
    ("set a timer for ten minutes", True),
    ("set an alarm", False),  # it would ask for the time: the user may go on
    ("tell me a joke", False),  # not understood: maybe not finished either
])
def test_only_a_complete_request_ends_at_the_early_endpoint(
    slow_rule_server: ServerHandle, text: str, early: bool
) -> None:
    dialog = str(uuid.uuid4())
    pcm = utterance(text, trail_ms=RULE_MS + 1000)

    async def go(client: RawH2, token: str, sid: int) -> VoiceResult:
        return await stream_voice(client, token, sid, pcm, dialog, stop_on_capture=True,
                                  interval=0.2)

    result = run(with_device(slow_rule_server, go))
    assert result.stop_capture is not None and result.status == 200
    assert result.stop_capture["header"]["dialogRequestId"] == dialog  # B-SR-01
    line = next(line for line in voice_log_lines(slow_rule_server)
                if line.get("dialogRequestId") == dialog)
    assert line["speculative"] is True and line["early_end"] is early, line
    silence_at_stop = line["endpoint_ms"] - line["speech_end_ms"]
    if early:
        assert 300 <= silence_at_stop < RULE_MS, line
    else:
        assert silence_at_stop >= RULE_MS, line
    answer: dict[str, Any] = {
        "what time is it": ["SpeechSynthesizer.Speak", "Clova.RenderText"],
        "set a timer for ten minutes": ["Alerts.SetAlert"],
        "set an alarm": ["SpeechSynthesizer.Speak", "Clova.RenderText",
                         "SpeechRecognizer.ExpectSpeech"],
        "tell me a joke": ["SpeechSynthesizer.Speak", "Clova.RenderText"],
    }
    assert names(result.directives) == answer[text]

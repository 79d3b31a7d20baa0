"""When to ask a recognizer for a partial result, and which results to show.

Sans-I/O: the voice turn tells a :class:`PartialScheduler` where the audio is (position,
speech start, current silence run) and what each partial decode returned; the
scheduler answers "start a decode now" and "show this text". No threads, sockets or
models here, so the rules are unit-tested with plain numbers.

Partial results become ``SpeechRecognizer.ShowRecognizedText`` (B-SR-03): a preview
while the user talks. None of them may cost the real answer, hence the rules:

1. Only after speech has started, and only while the user is talking: no decode starts
   when the current silence run is so long that the end-of-speech rule could fire
   before the decode is done (``silence_rule_ms - silence_ms < expected decode time``).
   The final decode would queue behind the preview otherwise.
2. At most one partial decode in flight per utterance.
3. A new decode only after ``interval_ms`` of new audio since the audio the previous
   one covered (for the first: since speech started). Whisper re-decodes the whole
   buffer (~0.2-0.3 s of both cores whatever its length), so it asks for 1000 ms; an
   engine whose partials are a by-product of feeding (a true streaming ASR) declares 0
   and is asked after every part.
4. After the end of speech (:meth:`stop`) nothing new starts and a result still in
   flight is dropped: ShowRecognizedText never follows StopCapture.
5. Only non-empty text that differs from the last shown is shown.

A decode the engine declined (``None``: busy with another utterance's decode) does not
count as covering the audio, so the next part asks again.
"""

from __future__ import annotations

__all__ = ["PartialScheduler"]

# Smoothing for the observed decode time (rule 1): recent decodes count most, one slow
# outlier does not stop previews for the rest of the utterance.
_EMA_WEIGHT = 0.5


class PartialScheduler:
    """The partial-result rules for one utterance (see the module docstring).

    ``interval_ms``: new audio between decodes (the engine's ``partial_interval_ms``).
    ``silence_rule_ms``: the end-of-speech rule's silence (the VAD's ``silence_ms``).
    ``decode_ms``: expected wall time of one partial decode until one is observed.
    """

    def __init__(self, interval_ms: float, silence_rule_ms: float, *, decode_ms: float = 300.0):
        if interval_ms < 0 or silence_rule_ms <= 0 or decode_ms < 0:
            raise ValueError("interval_ms and decode_ms must be >= 0, silence_rule_ms > 0")
        self.interval_ms = interval_ms
        self.silence_rule_ms = silence_rule_ms
        self.decode_ms = decode_ms  # updated from observed decodes
        self._covered_ms: float | None = None  # audio the last accepted decode covered
        self._pending_ms: float | None = None  # audio the decode in flight covers
        self._stopped = False
        self._last_shown = ""
        self.requested = 0  # decodes started
        self.declined = 0  # decodes the engine declined (busy)
        self.shown = 0  # texts handed out for ShowRecognizedText
        self.dropped = 0  # results that came after the end of speech

    @property
    def in_flight(self) -> bool:
        return self._pending_ms is not None

    @property
    def stopped(self) -> bool:
        return self._stopped

    def poll(
        self, audio_ms: float, *, speech_start_ms: float | None, silence_ms: float = 0.0
    ) -> bool:
        """After each part: True = start a partial decode of the ``audio_ms`` fed so far
        now (the scheduler then counts it as in flight until :meth:`result`)."""
        if self._stopped or self._pending_ms is not None or speech_start_ms is None:
            return False
        if self.silence_rule_ms - silence_ms < self.decode_ms:
            return False  # rule 1: the end of speech may come before this decode is done
        since = speech_start_ms if self._covered_ms is None else self._covered_ms
        # Only audio up to the last voiced moment counts: silence changes no words, so a
        # pause (or the silence after a short request) is no reason to decode again.
        voiced_to = audio_ms - silence_ms
        if voiced_to - since < max(self.interval_ms, 1e-9):
            return False  # rule 3 (a streaming engine: any new speech will do)
        self._pending_ms = voiced_to
        self.requested += 1
        return True

    def result(self, text: str | None, *, wall_ms: float | None = None) -> str | None:
        """The decode in flight returned ``text`` (None: the engine declined) after
        ``wall_ms``; the text to show in a ShowRecognizedText, or None."""
        pending, self._pending_ms = self._pending_ms, None
        if text is None:
            self.declined += 1
            return None
        if wall_ms is not None:
            self.decode_ms += _EMA_WEIGHT * (wall_ms - self.decode_ms)
        if pending is not None:
            self._covered_ms = pending
        if self._stopped:
            self.dropped += 1  # rule 4
            return None
        text = text.strip()
        if not text or text == self._last_shown:
            return None  # rule 5
        self._last_shown = text
        self.shown += 1
        return text

    def stop(self) -> None:
        """End of speech (or of the upload): no more partials for this utterance."""
        self._stopped = True

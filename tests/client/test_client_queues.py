"""The sans-I/O message queue: one test (at least) per B-DI / B-MQ rule."""

from __future__ import annotations

from opencic.client.queues import (
    Disposition,
    MessageQueue,
    QueuedDirective,
    normalize_cid,
    referenced_cids,
)
from opencic.protocol.messages import Attachment, Directive

R1 = "response#1"
R2 = "response#2"
DC = "downchannel#1"


def speak(dialog: str | None, cid: str | None = None, token: str = "tts") -> Directive:
    payload = {"token": token, "format": "AUDIO_MPEG", "url": f"cid:{cid}" if cid else "https://x/y.mp3"}
    return Directive.create("SpeechSynthesizer", "Speak", payload, dialog_request_id=dialog)


def render(dialog: str | None, text: str = "hi") -> Directive:
    return Directive.create("Clova", "RenderText", {"text": text}, dialog_request_id=dialog)


def drain(pop) -> list[QueuedDirective]:  # type: ignore[no-untyped-def]
    out = []
    while (item := pop()) is not None:
        out.append(item)
    return out


def names(items: list[QueuedDirective]) -> list[str]:
    return [i.directive.qualified_name for i in items]


def committed(dialog: str) -> MessageQueue:
    q = MessageQueue()
    q.begin_dialogue(dialog)
    q.commit_dialogue(dialog)
    return q


# --------------------------------------------------------------------------- B-DI


def test_b_di_02_commit_makes_id_latest() -> None:
    q = MessageQueue()
    assert q.latest_dialog_request_id is None
    q.begin_dialogue("d1")
    assert q.latest_dialog_request_id is None  # not before the request went through
    q.commit_dialogue("d1")
    assert q.latest_dialog_request_id == "d1"
    q.begin_dialogue("d2")
    q.commit_dialogue("d2")
    assert q.latest_dialog_request_id == "d2"


def test_b_di_02_directives_of_the_request_in_flight_are_accepted() -> None:
    # StopCapture arrives on the downchannel while the audio is still uploading.
    q = committed("d1")
    q.begin_dialogue("d2")
    stop = Directive.create("SpeechRecognizer", "StopCapture", {}, dialog_request_id="d2")
    assert q.add_directive(stop, DC) is Disposition.QUEUED
    assert names(drain(q.pop_dialogue)) == ["SpeechRecognizer.StopCapture"]


def test_b_di_03_new_latest_id_drops_queued_older_directives() -> None:
    q = committed("d1")
    q.add_directive(speak("d1", "a1"), R1)  # waits for its attachment
    q.add_directive(render("d1"), R1)
    q.begin_dialogue("d2")
    dropped = q.commit_dialogue("d2")
    assert [d.qualified_name for d in dropped] == ["SpeechSynthesizer.Speak", "Clova.RenderText"]
    assert len(q) == 0
    # ... and the late attachment of the dropped Speak is discarded too (B-DI-04).
    assert q.add_attachment(Attachment("a1", b"mp3"), R1) is False


def test_b_di_04_matching_id_is_queued_in_order() -> None:
    q = committed("d1")
    assert q.add_directive(speak("d1", token="t1"), R1) is Disposition.QUEUED
    assert q.add_directive(render("d1", "one"), R1) is Disposition.QUEUED
    assert q.add_directive(speak("d1", token="t2"), R1) is Disposition.QUEUED
    items = drain(q.pop_dialogue)
    assert [i.directive.payload.get("token") or i.directive.payload["text"] for i in items] == [
        "t1", "one", "t2"
    ]


def test_b_di_04_other_id_dropped_with_attachment_that_came_first() -> None:
    q = committed("d2")
    assert q.add_attachment(Attachment("old-cid", b"mp3"), R1) is True
    assert q.add_directive(speak("d1", "old-cid"), R1) is Disposition.DROPPED
    assert q.dropped[-1].dialog_request_id == "d1"
    assert len(q) == 0
    # The stored attachment went with it: a directive of the right dialogue naming the
    # same cid in the same response does not get the stale bytes.
    q.add_directive(speak("d2", "old-cid"), R1)
    assert q.pop_dialogue() is None
    q.end_source(R1)
    item = q.pop_dialogue()
    assert item is not None and item.missing == ("old-cid",)


def test_b_di_04_other_id_dropped_with_attachment_that_comes_later() -> None:
    q = committed("d2")
    q.open_source(R1)
    assert q.add_directive(speak("d1", "late"), R1) is Disposition.DROPPED
    assert q.add_attachment(Attachment("late", b"mp3"), R1) is False


def test_b_di_04_no_latest_id_yet_drops_directives_with_an_id() -> None:
    q = MessageQueue()
    assert q.add_directive(render("someone-else"), DC) is Disposition.DROPPED


def test_b_di_05_directive_without_id_is_handled_immediately() -> None:
    q = committed("d1")
    q.add_directive(speak("d1", "never"), R1)  # head of the dialogue lane is blocked
    notify = Directive.create("Notifier", "SetIndicator", {"state": "ON"})
    assert q.add_directive(notify, DC) is Disposition.IMMEDIATE
    item = q.pop_immediate()
    assert item is not None and item.directive is notify
    assert q.pop_dialogue() is None


def test_b_di_05_immediate_directive_still_waits_for_its_attachment() -> None:
    q = MessageQueue()
    q.add_directive(speak(None, "x"), DC)
    q.add_directive(render(None), DC)
    assert names(drain(q.pop_immediate)) == ["Clova.RenderText"]  # not blocked by the Speak
    q.add_attachment(Attachment("x", b"mp3"), DC)
    assert names(drain(q.pop_immediate)) == ["SpeechSynthesizer.Speak"]


def test_b_di_06_failed_send_keeps_previous_latest_id() -> None:
    q = committed("d1")
    q.add_directive(render("d1", "still playing"), R1)
    q.begin_dialogue("d2")
    q.add_directive(render("d2", "early"), DC)
    dropped = q.abort_dialogue("d2")
    assert q.latest_dialog_request_id == "d1"
    assert [d.payload["text"] for d in dropped] == ["early"]
    assert [i.directive.payload["text"] for i in drain(q.pop_dialogue)] == ["still playing"]
    # Late directives of the failed request are stale from now on.
    assert q.add_directive(render("d2"), R2) is Disposition.DROPPED
    assert q.add_directive(render("d1"), R2) is Disposition.QUEUED


def test_b_di_06_cancelled_request_before_any_directive() -> None:
    q = committed("d1")
    q.begin_dialogue("d2")
    assert q.abort_dialogue("d2") == []
    assert q.latest_dialog_request_id == "d1"
    assert q.pending_dialogues == ()


def test_b_di_01_follow_up_with_same_id_keeps_queue() -> None:
    # B-SR-06: an ExpectSpeech follow-up reuses the ID; nothing is stale.
    q = committed("d1")
    q.add_directive(render("d1"), R1)
    q.begin_dialogue("d1")
    assert q.commit_dialogue("d1") == []
    assert len(q) == 1


# --------------------------------------------------------------------------- B-MQ


def test_b_mq_01_one_at_a_time_in_arrival_order_across_sources() -> None:
    q = committed("d1")
    q.add_directive(render("d1", "a"), R1)
    q.add_directive(render("d1", "b"), DC)
    q.add_directive(render("d1", "c"), R1)
    assert [q.pop_dialogue().directive.payload["text"] for _ in range(3)] == ["a", "b", "c"]  # type: ignore[union-attr]
    assert q.pop_dialogue() is None


def test_b_mq_02_directive_waits_for_attachment_and_blocks_later_ones() -> None:
    q = committed("d1")
    q.add_directive(speak("d1", "A1"), R1)
    q.add_directive(render("d1"), R1)
    assert q.pop_dialogue() is None  # order kept: RenderText waits behind Speak
    q.add_attachment(Attachment("a1", b"ID3..."), R1)
    first = q.pop_dialogue()
    assert first is not None and first.directive.qualified_name == "SpeechSynthesizer.Speak"
    assert first.attachment("cid:A1") is not None
    assert first.attachment("cid:A1").data == b"ID3..."  # type: ignore[union-attr]
    assert names(drain(q.pop_dialogue)) == ["Clova.RenderText"]


def test_b_mq_02_attachment_before_directive() -> None:
    q = committed("d1")
    q.add_attachment(Attachment("<B2>", b"mp3"), R1)  # bracketed Content-ID
    q.add_directive(speak("d1", "b2"), R1)
    item = q.pop_dialogue()
    assert item is not None and item.attachments["b2"].data == b"mp3"


def test_b_mp_08_attachments_resolve_only_within_the_same_response() -> None:
    q = committed("d1")
    q.add_attachment(Attachment("c", b"other response"), R2)
    q.add_directive(speak("d1", "c"), R1)
    assert q.pop_dialogue() is None
    q.add_attachment(Attachment("c", b"mine"), R1)
    item = q.pop_dialogue()
    assert item is not None and item.attachment("cid:c").data == b"mine"  # type: ignore[union-attr]


def test_b_mq_02_missing_attachment_released_when_response_ends() -> None:
    q = committed("d1")
    q.add_directive(speak("d1", "gone"), R1)
    q.add_directive(render("d1"), R1)
    q.end_source(R1)
    items = drain(q.pop_dialogue)
    assert names(items) == ["SpeechSynthesizer.Speak", "Clova.RenderText"]
    assert items[0].missing == ("gone",)


def test_b_mq_03_superseded_dialogue_removed_from_every_lane_source() -> None:
    q = committed("d1")
    q.add_directive(render("d1", "resp"), R1)
    q.add_directive(render("d1", "down"), DC)
    q.add_directive(render(None, "background"), DC)
    q.begin_dialogue("d2")
    q.add_directive(render("d2", "new"), R2)
    q.commit_dialogue("d2")
    assert [i.directive.payload["text"] for i in drain(q.pop_dialogue)] == ["new"]
    assert [i.directive.payload["text"] for i in drain(q.pop_immediate)] == ["background"]


def test_b_mq_04_immediate_lane_independent_of_dialogue_lane() -> None:
    q = committed("d1")
    q.add_directive(speak("d1", "slow"), R1)
    q.add_directive(render(None, "bg1"), DC)
    q.add_directive(render(None, "bg2"), DC)
    assert [i.directive.payload["text"] for i in drain(q.pop_immediate)] == ["bg1", "bg2"]
    assert len(q) == 1


def test_b_mp_09_many_directives_one_response_processed_separately() -> None:
    q = committed("d1")
    for i in range(5):
        q.add_directive(speak("d1", f"c{i}", token=f"t{i}"), R1)
    for i in reversed(range(5)):  # attachments in reverse order (order not guaranteed)
        q.add_attachment(Attachment(f"c{i}", bytes([i])), R1)
    items = drain(q.pop_dialogue)
    assert [i.directive.payload["token"] for i in items] == [f"t{i}" for i in range(5)]
    assert [i.attachments[f"c{n}"].data for n, i in enumerate(items)] == [bytes([n]) for n in range(5)]


def test_b_sr_08_several_speaks_keep_arrival_order_even_if_later_attachment_first() -> None:
    q = committed("d1")
    q.add_directive(speak("d1", "first", token="1"), R1)
    q.add_directive(speak("d1", "second", token="2"), R1)
    q.add_attachment(Attachment("second", b"2"), R1)
    assert q.pop_dialogue() is None
    q.add_attachment(Attachment("first", b"1"), R1)
    assert [i.directive.payload["token"] for i in drain(q.pop_dialogue)] == ["1", "2"]


def test_end_source_discards_unclaimed_attachments() -> None:
    q = committed("d1")
    q.add_attachment(Attachment("orphan", b"x"), R1)
    q.end_source(R1)
    q.add_directive(speak("d1", "orphan"), R1)  # (a protocol violation, but must not hang)
    q.end_source(R1)
    item = q.pop_dialogue()
    assert item is not None and item.missing == ("orphan",)


# --------------------------------------------------------------------------- cids


def test_normalize_cid_case_and_brackets() -> None:
    assert normalize_cid("cid:ABC-1") == "abc-1"
    assert normalize_cid("<abc-1>") == "abc-1"
    assert normalize_cid("CID:<Abc-1>") == "abc-1"
    assert normalize_cid(" abc-1 ") == "abc-1"


def test_referenced_cids_scans_nested_payloads() -> None:
    payload = {
        "url": "cid:One",
        "items": [{"stream": {"url": "CID:two"}}, {"url": "https://x"}],
        "dup": "cid:one",
        "n": 3,
    }
    assert referenced_cids(payload) == ["one", "two"]

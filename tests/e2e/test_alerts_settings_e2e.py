"""Alarms and timers, settings reports and guest tokens, end to end against the real
server and its store (B-AL-01..14, B-SE-02/05, B-OT-04, auth.md §4), and per-user
isolation of that data."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from support.cic import (
    CONTENT_TYPE,
    auth_headers,
    event_body,
    event_json,
    exception_of,
    open_downchannel,
    read_parts,
)
from support.rawh2 import RawH2
from support.server import ServerHandle

from opencic.protocol.messages import parse_directive_json
from opencic.protocol.schema import validate_directive_strict
from opencic.state.base import Store


def names(directives: list[dict[str, Any]]) -> list[str]:
    return [f"{d['header']['namespace']}.{d['header']['name']}" for d in directives]


class Device:
    """One device: its own connection with a downchannel, sending events."""

    def __init__(self, client: RawH2, token: str, device_id: str) -> None:
        self.client, self.token, self.device_id = client, token, device_id

    @classmethod
    async def connect(cls, server: ServerHandle, token: str, device_id: str) -> Device:
        client = await server.connect()
        await open_downchannel(client, token)
        return cls(client, token, device_id)

    async def send(self, namespace: str, name: str, payload: dict[str, Any] | None = None,
                   context: list[Any] | None = None) -> tuple[int, list[dict[str, Any]]]:
        dialog = str(uuid.uuid4())
        doc = event_json(namespace, name, payload or {}, dialog, context)
        resp = await self.client.request("POST", "/v1/events",
                                         auth_headers(self.token, CONTENT_TYPE), event_body(doc))
        if resp.status != 200:
            return resp.status, []
        parts, closed = read_parts(resp.headers["content-type"], resp.body)
        assert closed
        directives = [p.directive for p in parts if "json" in p.headers.get("content-type", "")]
        for d in directives:
            validate_directive_strict(parse_directive_json({"directive": d}))
            assert d["header"]["dialogRequestId"] == dialog  # B-DI-07
        return resp.status, directives

    async def say(self, text: str, **extra: Any) -> list[dict[str, Any]]:
        context = extra.pop("context", None)
        status, directives = await self.send("TextRecognizer", "Recognize",
                                             {"text": text, **extra}, context)
        assert status == 200
        return directives

    async def close(self) -> None:
        await self.client.close()


def alerts_state(*alerts: dict[str, Any], ringing: bool = False) -> list[Any]:
    infos = [{k: a[k] for k in ("token", "type", "scheduledTime")} for a in alerts]
    return [{"header": {"namespace": "Alerts", "name": "AlertsState"},
             "payload": {"allAlerts": infos, "activeAlerts": infos if ringing else []}}]


def test_alarm_flow_by_text_is_stored_confirmed_synchronised_stopped_deleted(
        cic_server: ServerHandle) -> None:
    device_id = f"alarm-{uuid.uuid4().hex[:8]}"
    token = cic_server.create_token(device_id)

    async def go() -> None:
        device = await Device.connect(cic_server, token, device_id)
        try:
            # B-AL-01: the request is answered with SetAlert alone (no Speak yet).
            directives = await device.say("set an alarm for 7:30 am")
            assert names(directives) == ["Alerts.SetAlert"]
            alert = directives[0]["payload"]
            assert alert["type"] == "ALARM" and alert["scheduledTime"].endswith("Z")
            when = datetime.fromisoformat(alert["scheduledTime"]).astimezone()
            assert (when.hour, when.minute) == (7, 30)
            assert when > datetime.now(UTC)

            # Stored before the answer left: listed by a sync (B-AL-14).
            status, sync = await device.send("Alerts", "RequestSynchronizeAlert")
            assert names(sync) == ["Alerts.SynchronizeAlert"]
            assert sync[0]["payload"]["allAlerts"] == [alert]

            # B-AL-03: the device confirms; then the spoken confirmation + template.
            status, confirm = await device.send(
                "Alerts", "SetAlertSucceeded", {"token": alert["token"], "type": "ALARM"},
                alerts_state(alert))
            assert names(confirm) == ["SpeechSynthesizer.Speak", "Clova.RenderTemplate"]
            template = confirm[1]["payload"]
            assert template["type"] == "Alarm" and template["token"]["value"] == alert["token"]

            # The deprecated sync still answers old clients (B-AL-14).
            status, old = await device.send("System", "RequestSynchronizeState")
            assert names(old) == ["System.SynchronizeState"]
            assert old[0]["payload"]["allAlerts"] == [alert]

            # It rings; a voice "stop the alarm" acts on the reported active alert.
            ringing = alerts_state(alert, ringing=True)
            stop = await device.say("stop the alarm", context=ringing)
            assert names(stop) == ["Alerts.StopAlert"]
            assert stop[0]["payload"] == {"token": alert["token"], "type": "ALARM"}
            # A button stop (B-AL-06/07) is answered the same way.
            status, stop2 = await device.send(
                "Alerts", "RequestAlertStop", {"token": alert["token"], "type": "ALARM"}, ringing)
            assert names(stop2) == ["Alerts.StopAlert"]
            # B-AL-09: a one-off alarm is deleted once stopped.
            status, delete = await device.send(
                "Alerts", "AlertStopped", {"token": alert["token"], "type": "ALARM"},
                alerts_state(alert))
            assert names(delete) == ["Alerts.DeleteAlert"]
            status, _ = await device.send(
                "Alerts", "DeleteAlertSucceeded", {"token": alert["token"], "type": "ALARM"})
            assert status == 204
            status, sync = await device.send("Alerts", "RequestSynchronizeAlert")
            assert sync[0]["payload"]["allAlerts"] == []
        finally:
            await device.close()

    asyncio.run(go())


def test_timer_question_failure_cancel_and_list(cic_server: ServerHandle) -> None:
    device_id = f"timer-{uuid.uuid4().hex[:8]}"
    token = cic_server.create_token(device_id)

    async def go() -> None:
        device = await Device.connect(cic_server, token, device_id)
        try:
            # "set a timer" lacks a duration: a question with ExpectSpeech (B-SR-05).
            ask = await device.say("set a timer")
            assert names(ask) == ["SpeechSynthesizer.Speak", "Clova.RenderText",
                                  "SpeechRecognizer.ExpectSpeech"]
            speech_id = ask[2]["payload"]["expectSpeechId"]
            answer = await device.say("10 minutes", speechId=speech_id)
            assert names(answer) == ["Alerts.SetAlert"]
            timer = answer[0]["payload"]
            left = datetime.fromisoformat(timer["scheduledTime"]) - datetime.now(UTC)
            assert 540 < left.total_seconds() <= 600

            status, confirm = await device.send(
                "Alerts", "SetAlertSucceeded", {"token": timer["token"], "type": "TIMER"})
            assert names(confirm) == ["SpeechSynthesizer.Speak", "Clova.RenderTemplate"]
            assert confirm[1]["payload"]["type"] == "Timer"

            listed = await device.say("what timers do I have", context=alerts_state(timer))
            assert "You have 1 timer" in listed[1]["payload"]["text"]

            cancel = await device.say("cancel my timers", context=alerts_state(timer))
            assert names(cancel) == ["SpeechSynthesizer.Speak", "Clova.RenderText",
                                     "Alerts.DeleteAlert"]
            assert cancel[2]["payload"] == {"token": timer["token"], "type": "TIMER"}
            status, _ = await device.send("Alerts", "DeleteAlertSucceeded",
                                          {"token": timer["token"], "type": "TIMER"})
            assert status == 204

            # A device that cannot set an alert says so; the request is dropped.
            other = (await device.say("set an alarm for 6 pm"))[0]["payload"]
            status, sorry = await device.send(
                "Alerts", "SetAlertFailed", {"token": other["token"], "type": "ALARM"})
            assert names(sorry) == ["SpeechSynthesizer.Speak", "Clova.RenderText"]
            status, sync = await device.send("Alerts", "RequestSynchronizeAlert")
            assert sync[0]["payload"]["allAlerts"] == []
        finally:
            await device.close()

    asyncio.run(go())


def test_settings_report_and_context_are_stored(cic_server: ServerHandle) -> None:
    device_id = f"settings-{uuid.uuid4().hex[:8]}"
    token = cic_server.create_token(device_id)
    playback = [{"header": {"namespace": "AudioPlayer", "name": "PlaybackState"},
                 "payload": {"playerActivity": "PAUSED", "token": "song-1", "offsetInMilliseconds": 42}}]

    async def go() -> None:
        device = await Device.connect(cic_server, token, device_id)
        try:
            status, _ = await device.send("Settings", "Report",
                                          {"configuration": {"wakeword": "CLOVA", "nightMode": "on"}},
                                          playback)
            assert status == 204  # B-EV-03
            status, _ = await device.send("Settings", "Report",
                                          {"configuration": {"nightMode": "off"}})
            assert status == 204
        finally:
            await device.close()

    asyncio.run(go())

    async def read(store: Store) -> tuple[dict[str, str], Any]:
        state = await store.device_state.get(device_id)
        return await store.settings.get_all(device_id), state.context if state else None

    settings, context = cic_server.with_store(read)
    assert settings == {"nightMode": "off", "wakeword": "CLOVA"}
    assert context == playback


def test_guest_token_gets_expect_login_for_alarms(cic_server: ServerHandle) -> None:
    device_id = f"guest-{uuid.uuid4().hex[:8]}"

    async def issue(store: Store) -> str:
        await store.devices.ensure([device_id])
        return (await store.tokens.issue(device_id, ttl=600, guest=True)).access_token

    token = cic_server.with_store(issue)

    async def go() -> None:
        device = await Device.connect(cic_server, token, device_id)
        try:
            login = await device.say("set a timer for 5 minutes")
            assert names(login) == ["SpeechSynthesizer.Speak", "Clova.RenderText",
                                    "Clova.ExpectLogin"]
            assert login[2]["payload"] == {}  # clients receive an empty payload
            # Features that need no account still work for a guest.
            assert names(await device.say("what time is it"))[0] == "SpeechSynthesizer.Speak"
            _status, sync = await device.send("Alerts", "RequestSynchronizeAlert")
            assert sync[0]["payload"]["allAlerts"] == []
        finally:
            await device.close()

    asyncio.run(go())


def test_one_users_alerts_and_settings_never_reach_another(cic_server: ServerHandle) -> None:
    """Per-user isolation on the event path: each device reads and writes only its own
    rows, whatever tokens or alert tokens another device sends."""
    tag = uuid.uuid4().hex[:8]

    async def setup(store: Store) -> list[tuple[str, str]]:
        out = []
        for who in ("alice", "bob"):
            user = await store.users.add(f"{who}-{tag}", "pw")
            device_id = f"{who}-{tag}-speaker"
            await store.devices.register(device_id, user_id=user.user_id)
            out.append((device_id, (await store.tokens.issue(
                device_id, ttl=600, user_id=user.user_id)).access_token))
        return out

    (alice_id, alice_token), (bob_id, bob_token) = cic_server.with_store(setup)

    async def go() -> None:
        alice = await Device.connect(cic_server, alice_token, alice_id)
        bob = await Device.connect(cic_server, bob_token, bob_id)
        try:
            alarm = (await alice.say("set an alarm for 5 am"))[0]["payload"]
            await alice.send("Settings", "Report", {"configuration": {"owner": "alice"}})
            # Bob cannot see, confirm, stop or delete Alice's alarm by its token.
            _status, sync = await bob.send("Alerts", "RequestSynchronizeAlert")
            assert sync[0]["payload"]["allAlerts"] == []
            ref = {"token": alarm["token"], "type": "ALARM"}
            assert (await bob.send("Alerts", "SetAlertSucceeded", ref))[0] == 204
            assert (await bob.send("Alerts", "AlertStopped", ref))[0] == 204
            assert (await bob.send("Alerts", "DeleteAlertSucceeded", ref))[0] == 204
            await bob.send("Settings", "Report", {"configuration": {"owner": "bob"}})
            _status, sync = await alice.send("Alerts", "RequestSynchronizeAlert")
            assert sync[0]["payload"]["allAlerts"] == [alarm]
        finally:
            await alice.close()
            await bob.close()

    asyncio.run(go())

    async def read(store: Store) -> tuple[dict[str, str], dict[str, str]]:
        return await store.settings.get_all(alice_id), await store.settings.get_all(bob_id)

    alice_settings, bob_settings = cic_server.with_store(read)
    assert alice_settings == {"owner": "alice"} and bob_settings == {"owner": "bob"}


def test_unusable_alert_and_settings_events_are_400_and_lose_nothing(cic_server: ServerHandle) -> None:
    device_id = f"bad-{uuid.uuid4().hex[:8]}"
    token = cic_server.create_token(device_id)

    async def go() -> None:
        device = await Device.connect(cic_server, token, device_id)
        try:
            alarm = (await device.say("set an alarm for 6 am"))[0]["payload"]
            await device.send("Settings", "Report", {"configuration": {"wakeword": "CLOVA"}})
            for namespace, name, payload, why in (
                ("Alerts", "SetAlertSucceeded", {"type": "ALARM"}, "needs payload.token"),
                ("Alerts", "DeleteAlertSucceeded", {"token": 7, "type": "ALARM"}, "needs payload.token"),
                ("Alerts", "RequestAlertStop", {}, "needs payload.token"),
                ("Settings", "Report", {"configuration": "wakeword=x"}, "payload.configuration"),
                ("Settings", "Report", {}, "payload.configuration"),
            ):
                doc = event_json(namespace, name, payload, str(uuid.uuid4()))
                resp = await device.client.request(
                    "POST", "/v1/events", auth_headers(token, CONTENT_TYPE), event_body(doc))
                assert resp.status == 400, (name, resp.status)
                assert why in exception_of(resp)["description"]
            # Nothing stored was lost, and the connection (with its downchannel) still works.
            status, sync = await device.send("Alerts", "RequestSynchronizeAlert")
            assert status == 200 and sync[0]["payload"]["allAlerts"] == [alarm]
        finally:
            await device.close()

    asyncio.run(go())

    async def read(store: Store) -> dict[str, str]:
        return await store.settings.get_all(device_id)

    assert cic_server.with_store(read) == {"wakeword": "CLOVA"}


def test_a_repeating_alarm_moves_to_its_next_day_after_it_rang(cic_server: ServerHandle) -> None:
    """B-AL-09/10: only the next occurrence is on the device; after AlertStopped the
    same token gets a SetAlert for the following day it repeats on, stored first, and
    its confirmation is not spoken again."""
    device_id = f"daily-{uuid.uuid4().hex[:8]}"
    token = cic_server.create_token(device_id)

    async def go() -> None:
        device = await Device.connect(cic_server, token, device_id)
        try:
            directives = await device.say("wake me up every day at 6:45 am")
            assert names(directives) == ["Alerts.SetAlert"]
            alert = directives[0]["payload"]
            when = datetime.fromisoformat(alert["scheduledTime"]).astimezone()
            assert (when.hour, when.minute) == (6, 45) and when > datetime.now(UTC)
            ref = {"token": alert["token"], "type": "ALARM"}

            status, confirm = await device.send("Alerts", "SetAlertSucceeded", ref,
                                                alerts_state(alert))
            assert names(confirm) == ["SpeechSynthesizer.Speak", "Clova.RenderTemplate"]
            template = confirm[1]["payload"]
            assert template["repeatPeriod"] == {"type": "string", "value": "daily"}

            # It rang and was stopped: the same token, the same time the next day.
            status, after = await device.send("Alerts", "AlertStopped", ref,
                                              alerts_state(alert))
            assert names(after) == ["Alerts.SetAlert"]
            moved = after[0]["payload"]
            assert moved["token"] == alert["token"] and moved["type"] == "ALARM"
            later = datetime.fromisoformat(moved["scheduledTime"]).astimezone()
            assert (later.hour, later.minute) == (6, 45)
            assert later.date() == (when + timedelta(days=1)).date()

            # The device confirms the move: nothing is said again.
            status, quiet = await device.send("Alerts", "SetAlertSucceeded", ref,
                                              alerts_state(moved))
            assert status == 204 and quiet == []
            status, sync = await device.send("Alerts", "RequestSynchronizeAlert")
            assert sync[0]["payload"]["allAlerts"] == [moved]  # one alert, its next time

            # Cancelled by voice, it is gone for good.
            cancel = await device.say("cancel my alarms", context=alerts_state(moved))
            assert names(cancel)[-1] == "Alerts.DeleteAlert"
            status, _ = await device.send("Alerts", "DeleteAlertSucceeded", ref)
            status, sync = await device.send("Alerts", "RequestSynchronizeAlert")
            assert sync[0]["payload"]["allAlerts"] == []
        finally:
            await device.close()

    asyncio.run(go())

"""The state layer's interface: records, repositories and the store that holds them.

Everything here is async: the server's event loop awaits each query and never blocks
on one. Two back ends implement it (``sqlite.py``, ``postgres.py``); callers only see
these Protocols, obtained from :func:`opencic.state.store.open_store`.

Times are POSIX seconds (floats) everywhere, so the two back ends store and compare
them the same way and tests can pass ``now=`` to travel in time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

# ------------------------------------------------------------------ errors


class StateError(Exception):
    """Base of the errors the state layer raises on purpose."""


class SchemaVersionError(StateError):
    """The database was migrated by a newer OpenCIC than this one (or is not ours)."""


class AlreadyExists(StateError):
    """A create collided with an existing record (same id or unique name)."""


class MissingReference(StateError):
    """A record refers to one that does not exist (unknown user, client or device)."""


# ------------------------------------------------------------------ records


@dataclass(frozen=True, slots=True)
class User:
    user_id: str
    name: str
    created_at: float


@dataclass(frozen=True, slots=True)
class Client:
    """A product registered to use the auth API (its secret is stored hashed only)."""

    client_id: str
    name: str
    created_at: float


@dataclass(frozen=True, slots=True)
class Device:
    device_id: str
    user_id: str | None  # None: a development device made by ``opencic token create``
    client_id: str | None
    model_id: str | None
    created_at: float


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """What a live access token lets its bearer act as."""

    device_id: str
    user_id: str | None
    client_id: str | None
    expires_at: float
    guest: bool = False


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A freshly issued pair; the only moment the plain tokens exist on our side."""

    access_token: str
    refresh_token: str | None
    device_id: str
    expires_at: float
    refresh_expires_at: float | None

    def expires_in(self, now: float) -> int:
        return max(0, round(self.expires_at - now))


@dataclass(frozen=True, slots=True)
class AuthCode:
    """What a claimed authorization code (auth.md §2.1) was issued for."""

    client_id: str
    user_id: str | None  # None: a guest code (request_vu=Y)
    device_id: str
    model_id: str
    guest: bool
    expires_at: float


@dataclass(frozen=True, slots=True)
class DeviceState:
    device_id: str
    context: Any  # the device's latest context, as JSON-compatible values
    updated_at: float


@dataclass(frozen=True, slots=True)
class PendingDirective:
    seq: int  # increasing per store: the delivery order
    device_id: str
    directive: Any  # JSON-compatible
    created_at: float
    expires_at: float | None


@dataclass(frozen=True, slots=True)
class Alert:
    device_id: str
    token: str
    type: str  # ALARM, TIMER, REMINDER, ACTIONTIMER
    scheduled_at: float
    payload: Any  # the Alerts.SetAlert payload as sent to the device
    status: str  # requested, set, deleting (see state/alerts.py)
    created_at: float
    updated_at: float
    # The Recognize that asked for it: its later confirmation belongs to that dialogue.
    dialog_request_id: str | None = None
    # A repeating alert: the weekdays it comes back on, Monday = "0" ("01234": weekdays);
    # None: one-off. Only the next occurrence is ever on the device (B-AL-10).
    repeat_days: str | None = None


# ------------------------------------------------------------------ repositories


class UserRepository(Protocol):
    async def add(self, name: str, password: str | None = None, *, now: float | None = None) -> User: ...
    async def get(self, user_id: str) -> User | None: ...
    async def get_by_name(self, name: str) -> User | None: ...
    async def list(self) -> list[User]: ...
    async def remove(self, user_id: str) -> bool:
        """Removes the user with their devices, tokens and device data (cascade)."""
        ...
    async def verify_password(self, name: str, password: str) -> User | None: ...
    async def set_password(self, user_id: str, password: str) -> bool: ...


class ClientRepository(Protocol):
    async def add(self, client_id: str, secret: str, *, name: str = "",
                  now: float | None = None) -> Client: ...
    async def get(self, client_id: str) -> Client | None: ...
    async def list(self) -> list[Client]: ...
    async def remove(self, client_id: str) -> bool: ...
    async def verify(self, client_id: str, secret: str) -> Client | None: ...


class DeviceRepository(Protocol):
    async def register(self, device_id: str, *, user_id: str | None = None,
                       client_id: str | None = None, model_id: str | None = None,
                       now: float | None = None) -> Device:
        """Creates the device or re-assigns it (a device re-authorised by its owner)."""
        ...
    async def ensure(self, device_ids: Sequence[str], *, now: float | None = None) -> None:
        """Creates the devices that do not exist yet, leaving existing ones as they are."""
        ...
    async def get(self, device_id: str) -> Device | None: ...
    async def list(self, user_id: str | None = None) -> list[Device]: ...
    async def remove(self, device_id: str) -> bool:
        """Removes the device with its tokens, settings, state and pending directives."""
        ...


class TokenRepository(Protocol):
    async def issue(self, device_id: str, *, ttl: float, refresh_ttl: float | None = None,
                    user_id: str | None = None, client_id: str | None = None,
                    guest: bool = False, now: float | None = None) -> IssuedToken: ...
    async def issue_many(self, device_ids: Sequence[str], *, ttl: float,
                         now: float | None = None) -> list[IssuedToken]:
        """One access token per device, in one transaction (bulk provisioning, benches)."""
        ...
    async def lookup(self, access_token: str, *, now: float | None = None) -> TokenGrant | None:
        """The grant of a live token; None if unknown, revoked or expired."""
        ...
    async def refresh(self, refresh_token: str, *, ttl: float, refresh_ttl: float,
                      client_id: str | None = None, device_id: str | None = None,
                      now: float | None = None) -> IssuedToken | None:
        """Rotation: a new pair for a live refresh token, whose old pair is revoked.
        A refresh token works once; None if unknown, used, revoked or expired, or (when
        given) issued to another client or device."""
        ...
    async def live_among(self, access_hashes: Sequence[str], *,
                         now: float | None = None) -> set[str]:
        """Which of these access-token hashes are still live (not revoked, not expired,
        not deleted): the server's sweep over its open downchannels."""
        ...
    async def revoke(self, token: str) -> bool:
        """Revokes the pair that ``token`` (access or refresh) belongs to."""
        ...
    async def revoke_device(self, device_id: str) -> int: ...
    async def purge_expired(self, *, now: float | None = None) -> int:
        """Deletes pairs that can no longer be used at all (housekeeping)."""
        ...


class AccountTokenRepository(Protocol):
    """Users' account tokens (what ``/authorize`` takes as ``Authorization: Bearer``)
    and their terms agreement."""

    async def issue(self, user_id: str, *, now: float | None = None) -> str: ...
    async def lookup(self, token: str) -> User | None: ...
    async def revoke_user(self, user_id: str) -> int: ...
    async def terms_agreed(self, user_id: str) -> bool: ...
    async def agree_terms(self, user_id: str, *, now: float | None = None) -> bool: ...


class AuthCodeRepository(Protocol):
    """Authorization codes: random, stored hashed, single use, short-lived."""

    async def issue(self, *, client_id: str, user_id: str | None, device_id: str, model_id: str,
                    ttl: float, guest: bool = False, terms_pending: bool = False,
                    now: float | None = None) -> str: ...
    async def claim(self, code: str, *, client_id: str, device_id: str, model_id: str,
                    now: float | None = None) -> AuthCode | None: ...
    async def pending_user(self, code: str, *, now: float | None = None) -> str | None: ...
    async def release(self, code: str, *, now: float | None = None) -> bool: ...
    async def discard(self, code: str) -> bool: ...
    async def purge_expired(self, *, now: float | None = None) -> int:
        """Deletes codes past their expiry (claimed ones are already gone)."""
        ...


class SettingsRepository(Protocol):
    """Per-device key/value settings (what SettingsReport etc. carry)."""

    async def get(self, device_id: str, key: str) -> str | None: ...
    async def get_all(self, device_id: str) -> dict[str, str]: ...
    async def put(self, device_id: str, values: Mapping[str, str], *,
                  now: float | None = None) -> None:
        """Upserts all ``values`` atomically."""
        ...
    async def delete(self, device_id: str, key: str) -> bool: ...


class DeviceStateRepository(Protocol):
    async def put(self, device_id: str, context: Any, *, now: float | None = None) -> None: ...
    async def get(self, device_id: str) -> DeviceState | None: ...


class PendingDirectiveRepository(Protocol):
    """Store-and-forward queue of cloud-initiated directives for offline devices."""

    async def enqueue(self, device_id: str, directive: Any, *, expires_at: float | None = None,
                      now: float | None = None) -> int: ...
    async def fetch(self, device_id: str, *, limit: int = 100,
                    now: float | None = None) -> list[PendingDirective]:
        """Unacknowledged, unexpired directives in enqueue order."""
        ...
    async def ack(self, device_id: str, seqs: Sequence[int]) -> int:
        """Marks delivered directives done (they are deleted); returns how many."""
        ...
    async def purge_expired(self, *, now: float | None = None) -> int: ...


class AlertRepository(Protocol):
    async def put(self, device_id: str, payload: dict[str, Any], *, scheduled_at: float,
                  status: str = "requested", dialog_request_id: str | None = None,
                  repeat_days: str | None = None, now: float | None = None) -> Alert:
        """Creates or replaces the alert ``payload["token"]`` of the device."""
        ...
    async def get(self, device_id: str, token: str) -> Alert | None: ...
    async def list(self, device_id: str, *,
                   statuses: tuple[str, ...] = ("requested", "set")) -> list[Alert]:
        """The device's alerts in these states, soonest first."""
        ...
    async def set_status(self, device_id: str, token: str, status: str, *,
                         now: float | None = None) -> bool: ...
    async def remove(self, device_id: str, token: str) -> bool: ...


class Store(Protocol):
    """One database: the repositories over it, opened (and migrated) once per process."""

    # Read-only properties, so implementations may narrow the types.
    @property
    def backend(self) -> str:
        """"sqlite" or "postgresql"."""
        ...
    @property
    def users(self) -> UserRepository: ...
    @property
    def clients(self) -> ClientRepository: ...
    @property
    def devices(self) -> DeviceRepository: ...
    @property
    def tokens(self) -> TokenRepository: ...
    @property
    def account_tokens(self) -> AccountTokenRepository: ...
    @property
    def auth_codes(self) -> AuthCodeRepository: ...
    @property
    def settings(self) -> SettingsRepository: ...
    @property
    def device_state(self) -> DeviceStateRepository: ...
    @property
    def pending(self) -> PendingDirectiveRepository: ...
    @property
    def alerts(self) -> AlertRepository: ...

    async def open(self) -> None:
        """Connects and applies pending migrations; refuses a newer schema."""
        ...
    async def close(self) -> None: ...
    async def schema_version(self) -> int: ...

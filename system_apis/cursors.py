"""Where an incremental read stands, kept in Redis behind an opaque cursor token.

The state behind a cursor can be large (every version returned inside the
lookback), so a cursor is a random token for state kept in Redis for
:data:`CURSOR_TTL` seconds. Each page gets a new token and old tokens stay
valid, so a client may ask again for a page it did not receive. A state names
its ``feed`` (source, resource and filters); a token is refused for another feed.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

import msgspec

from shared.errors import BadRequestError

if TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = ("CURSOR_TTL", "CursorStore")

CURSOR_TTL = 7 * 86400
"""Seconds a cursor stays valid (7 days)."""
KEY_PREFIX = "finsync:system:cursor:"


class _Feed(Protocol):
    @property
    def feed(self) -> str: ...


S = TypeVar("S", bound=_Feed)


class CursorStore(Generic[S]):
    """Read states of one type (a msgspec Struct with a ``feed``), each under an opaque token."""

    def __init__(self, redis: aioredis.Redis, state_type: type[S]) -> None:
        self.redis = redis
        self.state_type = state_type

    async def save(self, state: S) -> str:
        """Store ``state``; its token."""
        token = secrets.token_urlsafe(18)
        await self.redis.set(KEY_PREFIX + token, msgspec.json.encode(state), ex=CURSOR_TTL)
        return token

    async def load(self, token: str, feed: str) -> S:
        """The state behind ``token``.

        Raises:
            BadRequestError: unknown or expired token, a token of another feed (other filters), or of
                another kind of read.
        """
        raw = await self.redis.get(KEY_PREFIX + token)
        if raw is None:
            raise BadRequestError(
                f"cursor is unknown or older than {CURSOR_TTL // 86400} days; start a new read",
                field="cursor",
            )
        try:
            state = msgspec.json.decode(raw, type=self.state_type)
        except msgspec.ValidationError:
            raise BadRequestError("cursor belongs to another kind of read", field="cursor") from None
        if state.feed != feed:
            raise BadRequestError(
                "cursor belongs to a read with other filters; pass the same filters", field="cursor"
            )
        return state

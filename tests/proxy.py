"""A loopback TCP proxy that can cut an answer after the server has sent it (a lost response)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ("CuttingProxy", "cutting_proxy")


class CuttingProxy:
    """Forwards bytes both ways; :meth:`cut_answer_to` drops the answer to the next request containing a marker.

    The request reaches the server, which does its work (and commits); only its
    answer is lost: the proxy closes the client's connection instead of
    forwarding it, as a network failure would.
    """

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.cuts = 0
        """Answers dropped so far."""
        self._marker: bytes | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def cut_answer_to(self, marker: bytes) -> None:
        """Drop the answer to the next request whose bytes contain ``marker``."""
        self._marker = marker

    async def start(self) -> None:
        """Listen on a free loopback port (:attr:`port`)."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and close every connection."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
        doomed = asyncio.Event()

        async def forward_requests() -> None:
            while data := await client_reader.read(65536):
                if self._marker is not None and self._marker in data:
                    self._marker = None
                    doomed.set()
                upstream_writer.write(data)
                await upstream_writer.drain()

        async def forward_answers() -> None:
            while data := await upstream_reader.read(65536):
                if doomed.is_set():
                    self.cuts += 1
                    return  # the server answered (and committed); the client never hears it
                client_writer.write(data)
                await client_writer.drain()

        requests = asyncio.ensure_future(forward_requests())
        try:
            await forward_answers()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            requests.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await requests
            for writer in (client_writer, upstream_writer):
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()
            self._tasks.discard(task)


@contextlib.asynccontextmanager
async def cutting_proxy(upstream_host: str, upstream_port: int) -> AsyncIterator[CuttingProxy]:
    """A started :class:`CuttingProxy`, stopped on exit."""
    proxy = CuttingProxy(upstream_host, upstream_port)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()

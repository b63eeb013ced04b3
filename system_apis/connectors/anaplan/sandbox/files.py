"""Files and their chunked uploads: ``POST …/files/{id}``, ``PUT …/chunks/{n}``, ``POST …/complete``.

An upload stages chunks; they become the file's content when the upload is
completed (``complete``, or the last of a declared positive ``chunkCount``).
Chunks must come in order from 0. Sending the last index again replaces that
chunk (a retried ``PUT`` is idempotent), and completing again commits the same
chunks again, so a retry after a lost answer does no harm; anything else out
of order is refused. The content an import reads is the last completed one.
"""

from __future__ import annotations

import zlib
from typing import Any

from system_apis.connectors.anaplan.sandbox.errors import (
    InvalidRequestError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)

__all__ = (
    "CHUNK_MEDIA_TYPES",
    "MAX_CHUNKS",
    "MAX_CHUNK_BYTES",
    "SandboxFile",
    "decode_chunk",
    "split_chunks",
)

MAX_CHUNK_BYTES = 50 * 1024 * 1024
"""Largest chunk Anaplan takes (50 MB), before and after gunzip."""
MAX_CHUNKS = 1000
"""Most chunks one file may have."""
CHUNK_MEDIA_TYPES = ("application/octet-stream", "application/x-gzip")
"""The content types a chunk may have; gzip chunks are stored gunzipped."""


def decode_chunk(body: bytes, content_type: str | None) -> bytes:
    """A chunk's bytes as stored: the body itself, or gunzipped when sent as ``application/x-gzip``.

    Raises:
        UnsupportedMediaTypeError: another content type, or none.
        InvalidRequestError: the body is empty, or not valid gzip.
        PayloadTooLargeError: it gunzips to more than :data:`MAX_CHUNK_BYTES`.
    """
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type not in CHUNK_MEDIA_TYPES:
        raise UnsupportedMediaTypeError(f"a chunk is sent as {' or '.join(CHUNK_MEDIA_TYPES)}")
    if not body:
        raise InvalidRequestError("the chunk is empty")
    if media_type == "application/octet-stream":
        return body
    parts: list[bytes] = []
    size = 0
    rest = body
    try:
        # A gzip file may hold several members; each is gunzipped in turn, with the size capped as it goes.
        while rest:
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            part = inflater.decompress(rest, MAX_CHUNK_BYTES + 1 - size)
            size += len(part)
            if size > MAX_CHUNK_BYTES:
                raise PayloadTooLargeError(f"a chunk holds at most {MAX_CHUNK_BYTES} bytes once gunzipped")
            if not inflater.eof:
                raise InvalidRequestError("the gzip chunk is truncated")
            parts.append(part)
            rest = inflater.unused_data
    except zlib.error as exc:
        raise InvalidRequestError(f"the chunk is not valid gzip: {exc}") from exc
    return b"".join(parts)


def split_chunks(content: bytes, size: int) -> list[bytes]:
    """``content`` cut every ``size`` bytes, anywhere (the client concatenates the chunks)."""
    return [content[start : start + size] for start in range(0, len(content), size)]


class SandboxFile:
    """A file of the model: an import's data source, or an export's output."""

    def __init__(self, file_id: str, name: str, *, uploadable: bool) -> None:
        """An empty file; only an ``uploadable`` one (an import's data source) takes uploads."""
        self.id = file_id
        """Anaplan-like id (an export's file has the export's id)."""
        self.name = name
        """Its name."""
        self.uploadable = uploadable
        """Whether clients may upload into it."""
        self.chunks: list[bytes] = []
        """The last completed content, in chunks."""
        self._staged: list[bytes] | None = None
        self._declared: int | None = None

    @property
    def content(self) -> bytes:
        """The last completed content."""
        return b"".join(self.chunks)

    def info(self, chunk_count: int | None = None) -> dict[str, Any]:
        """The file as ``GET …/files`` lists it."""
        return {
            "id": self.id,
            "name": self.name,
            "chunkCount": len(self.chunks) if chunk_count is None else chunk_count,
            "delimiter": '"',
            "encoding": "UTF-8",
            "firstDataRow": 2,
            "format": "txt",
            "headerRow": 1,
            "separator": ",",
        }

    def _check_uploadable(self) -> None:
        """Refuse an upload into an export's output."""
        if not self.uploadable:
            raise InvalidRequestError(f"{self.name} is an export's output; it cannot be uploaded")

    def start_upload(self, chunk_count: int) -> None:
        """Begin a new upload of ``chunk_count`` chunks, or of an unknown number when it is -1.

        Raises:
            InvalidRequestError: a count that is neither -1 nor 1 to :data:`MAX_CHUNKS`.
        """
        self._check_uploadable()
        if chunk_count != -1 and not 1 <= chunk_count <= MAX_CHUNKS:
            raise InvalidRequestError(f"chunkCount is -1 or 1 to {MAX_CHUNKS}")
        self._staged = []
        self._declared = None if chunk_count == -1 else chunk_count

    def put_chunk(self, index: int, data: bytes) -> None:
        """Stage chunk ``index``: the next one, or the last one again (which replaces it).

        Raises:
            InvalidRequestError: no upload was started, or the index is out of order or past the declared count.
        """
        self._check_uploadable()
        staged = self._staged
        if staged is None:
            raise InvalidRequestError(f"no upload in progress for {self.name}: POST its chunkCount first")
        limit = self._declared if self._declared is not None else MAX_CHUNKS
        if index >= limit:
            raise InvalidRequestError(f"chunk {index} is past the upload's {limit} chunks")
        if index == len(staged):
            staged.append(data)
        elif index == len(staged) - 1:
            staged[index] = data
        else:
            raise InvalidRequestError(
                f"chunks come in order from 0: expected chunk {len(staged)}, got {index}"
            )
        if self._declared is not None and len(staged) == self._declared:
            self.chunks = list(staged)

    def complete(self) -> None:
        """Make the staged chunks the file's content.

        Raises:
            InvalidRequestError: no upload was started, no chunk arrived, or fewer than the declared count.
        """
        self._check_uploadable()
        staged = self._staged
        if staged is None:
            raise InvalidRequestError(f"no upload in progress for {self.name}: POST its chunkCount first")
        if not staged:
            raise InvalidRequestError("no chunk was uploaded")
        if self._declared is not None and len(staged) < self._declared:
            raise InvalidRequestError(f"{len(staged)} of the upload's {self._declared} chunks arrived")
        self.chunks = list(staged)

    def upload_whole(self, data: bytes) -> None:
        """``PUT …/files/{id}``: the whole content as one chunk, in one call (no upload is staged)."""
        self._check_uploadable()
        self._staged = None
        self._declared = None
        self.chunks = [data]

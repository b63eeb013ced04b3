"""The sandbox's errors: one base, small subclasses that differ by the status the vendor answers with.

::

    SandboxError
    ├── InvalidRequestError       400: bad JSON, bad parameters, chunks out of order
    ├── UnknownObjectError        404: no such workspace, model, list, file, action, task or dump
    ├── ModelBusyError            409: a task runs on the model (or the busy fault is on)
    ├── PayloadTooLargeError      413: a chunk over the vendor's 50 MB
    └── UnsupportedMediaTypeError 415: a chunk that is neither octet-stream nor gzip

Authentication failures are not here: they answer before any handler runs
(:mod:`~.integration_api`, :mod:`~.token_api`).
"""

from __future__ import annotations

__all__ = (
    "InvalidRequestError",
    "ModelBusyError",
    "PayloadTooLargeError",
    "SandboxError",
    "UnknownObjectError",
    "UnsupportedMediaTypeError",
)


class SandboxError(Exception):
    """Base of the sandbox's errors; :mod:`~.responses` turns one into the vendor's status envelope."""

    status_code: int = 500
    """The HTTP status it answers with."""

    def __init__(self, message: str) -> None:
        """Keep ``message``: the ``status.message`` of the answer."""
        super().__init__(message)
        self.message = message
        """What went wrong, for the client."""


class InvalidRequestError(SandboxError):
    """The request cannot be accepted as sent."""

    status_code = 400


class UnknownObjectError(SandboxError):
    """An id in the path names nothing the sandbox holds."""

    status_code = 404


class ModelBusyError(SandboxError):
    """The model is busy: a task is running on it."""

    status_code = 409


class PayloadTooLargeError(SandboxError):
    """The body is over the limit."""

    status_code = 413


class UnsupportedMediaTypeError(SandboxError):
    """The body's content type is not one the endpoint takes."""

    status_code = 415

"""The exceptions of the SDK."""

from __future__ import annotations


class EddyError(Exception):
    """Base class of every error the SDK raises itself."""


class InvalidRequestError(EddyError, ValueError):
    """The request bytes are not a valid StateFun ``ToFunction`` invocation batch.

    The HTTP (ASGI) and Lambda handlers answer it with status 400.
    """


class UnknownFunctionError(InvalidRequestError):
    """The request targets a function type that is not registered.

    The HTTP (ASGI) and Lambda handlers answer it with status 404.
    """

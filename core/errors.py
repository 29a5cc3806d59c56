"""The one error type of the project, with a code that callers (CLI, HTTP) map to an exit status or
an HTTP status in exactly one place.

Hierarchy::

    SupportbotError
    ├── ConfigError           bad or inconsistent settings
    ├── InvalidInputError     a request, query or file the caller must fix
    │   ├── UnsupportedFileError
    │   └── PayloadTooLargeError  a request body or file over the configured size
    ├── AuthenticationError   no API key, or one that is unknown or revoked
    ├── PermissionDeniedError the key is valid but may not do this (admin routes)
    ├── NotFoundError         a named thing does not exist (or belongs to another tenant)
    ├── AlreadyHandledError   a delivery of something already recorded (a channel's retried event)
    ├── RateLimitedError      the caller sent too many requests; ``retry_after_s`` says when to retry
    └── BackendUnavailableError  a store or server we depend on cannot be reached
        ├── OverloadedError   every generator is busy and the queue is full; ``retry_after_s``
        └── RequestTimeoutError  no answer within the request's time limit
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    CONFIG = "config_error"
    INVALID_INPUT = "invalid_input"
    UNSUPPORTED_FILE = "unsupported_file"
    NOT_FOUND = "not_found"
    BACKEND_UNAVAILABLE = "backend_unavailable"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    RATE_LIMITED = "rate_limited"
    OVERLOADED = "overloaded"
    TIMEOUT = "timeout"
    ALREADY_HANDLED = "already_handled"


class SupportbotError(Exception):
    """Base class: every error we raise on purpose carries a code and a human-readable reason."""

    code: ErrorCode = ErrorCode.INVALID_INPUT

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(SupportbotError):
    code = ErrorCode.CONFIG


class InvalidInputError(SupportbotError):
    code = ErrorCode.INVALID_INPUT


class UnsupportedFileError(InvalidInputError):
    code = ErrorCode.UNSUPPORTED_FILE


class NotFoundError(SupportbotError):
    code = ErrorCode.NOT_FOUND


class AlreadyHandledError(SupportbotError):
    """The request repeats one whose record exists already (a platform redelivering an event to this
    or another process): the caller drops it rather than answering twice."""

    code = ErrorCode.ALREADY_HANDLED


class BackendUnavailableError(SupportbotError):
    code = ErrorCode.BACKEND_UNAVAILABLE


class PayloadTooLargeError(InvalidInputError):
    code = ErrorCode.PAYLOAD_TOO_LARGE


class AuthenticationError(SupportbotError):
    code = ErrorCode.UNAUTHORIZED


class PermissionDeniedError(SupportbotError):
    code = ErrorCode.FORBIDDEN


class RateLimitedError(SupportbotError):
    code = ErrorCode.RATE_LIMITED

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class OverloadedError(BackendUnavailableError):
    code = ErrorCode.OVERLOADED

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class RequestTimeoutError(BackendUnavailableError):
    code = ErrorCode.TIMEOUT

"""The one error type of the project, with a code that callers (CLI, HTTP) map to an exit status or
an HTTP status in exactly one place.

Hierarchy::

    SupportbotError
    ├── ConfigError           bad or inconsistent settings
    ├── InvalidInputError     a request, query or file the caller must fix
    │   └── UnsupportedFileError
    ├── NotFoundError         a named thing does not exist
    └── BackendUnavailableError  a store or server we depend on cannot be reached
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    CONFIG = "config_error"
    INVALID_INPUT = "invalid_input"
    UNSUPPORTED_FILE = "unsupported_file"
    NOT_FOUND = "not_found"
    BACKEND_UNAVAILABLE = "backend_unavailable"


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


class BackendUnavailableError(SupportbotError):
    code = ErrorCode.BACKEND_UNAVAILABLE

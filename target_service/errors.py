"""One exception tree for the service.

Library errors (asyncpg, httpx) are translated into these at the boundary
with `raise ... from`, so routers and the app's error handlers deal with the
service's own vocabulary, and every API error maps to a 4xx JSON body with a
stable `code`: clients never see a 500 for bad input.
"""

from __future__ import annotations

RETRY_AFTER_S = 1
"""What every 503 tells the client to wait (`Retry-After`, seconds): a pool that lost the
database reconnects within about a second of it coming back."""


class TargetServiceError(Exception):
    """Base of every error the service raises on purpose."""


class ConfigurationError(TargetServiceError):
    """The service cannot run with the settings it was given."""


class MigrationError(TargetServiceError):
    """A migration file is malformed, failed, or was edited after being applied."""


class DatabaseUnavailable(TargetServiceError):
    """The database cannot be reached (after retries) or the pool is closed."""


class ApiError(TargetServiceError):
    """An error that is the client's to fix; rendered as `{"error": {...}}`."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: object | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class Unauthorized(ApiError):
    """No, or an unknown, bearer API key."""

    status_code = 401
    code = "unauthorized"


class NotFound(ApiError):
    """The resource does not exist *for this caller* (another user's rows are 404, not 403)."""

    status_code = 404
    code = "not_found"


class InvalidParameter(ApiError):
    """A parameter parsed but is not acceptable (range too wide, bad cursor)."""

    status_code = 422
    code = "invalid_parameter"

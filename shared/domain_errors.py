"""Errors a use case raises when a request breaks a rule: each names the rule by a stable `code`.

They carry no HTTP status; `shared.errors` answers each kind with its status and the one error
shape `{"detail": ..., "code": ...}`.
"""

from __future__ import annotations


class DomainError(Exception):
    """A request the rules refuse, named by `code` (a subclass says which kind of refusal)."""

    code = "refused"

    def __init__(self, detail: str, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code


class NotFound(DomainError):
    """No such object, or another tenant's: the two are told alike, so neither leaks."""

    code = "not_found"

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} not found")


class Forbidden(DomainError):
    """The caller is who it says, but may not do this (the code says why)."""

    code = "forbidden"


class NotAcceptable(DomainError):
    """The request accepts no representation the route can answer with."""

    code = "not_acceptable"


class Conflict(DomainError):
    """The request conflicts with the object's state (the code says which)."""

    code = "conflict"


class Invalid(DomainError):
    """The request is well-formed but breaks a rule about its content (the code names the rule)."""

    code = "invalid_request"


class NotConfigured(DomainError):
    """The service lacks data an operator must load before it can answer."""

    code = "not_configured"

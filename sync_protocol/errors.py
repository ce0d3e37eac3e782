"""One exception tree for the shared language.

Every error carries a stable ``code`` (for APIs and tests), an English ``message`` that is
also the gettext message id (the web layer translates it), the ``field`` it concerns if any,
and ``params`` for the message's %-placeholders.
"""

from __future__ import annotations

from typing import Any


class ProtocolError(Exception):
    code = "protocol_error"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None,
                 **params: Any) -> None:
        self.message = message
        self.field = field
        self.params = params
        if code is not None:
            self.code = code
        super().__init__(self.text)

    @property
    def message_params(self) -> dict[str, Any]:
        """What the message's placeholders may name: its params, and %(field)s."""
        return {"field": self.field, **self.params}

    @property
    def text(self) -> str:
        """The English message with its parameters filled in."""
        return self.message % self.message_params if "%(" in self.message else self.message


class InvalidIdentifier(ProtocolError, ValueError):
    code = "invalid_identifier"


class InvalidPinfl(InvalidIdentifier):
    code = "invalid_pinfl"

    def __init__(self, message: str, *, part: str, **params: Any) -> None:
        self.part = part  # length, digits, century, birth_date, district, serial, check_digit
        super().__init__(message, field="pinfl", code=f"invalid_pinfl_{part}", **params)


class InvalidPhone(InvalidIdentifier):
    code = "invalid_phone"


class InvalidDocument(InvalidIdentifier):
    code = "invalid_document"


class EventRejected(ProtocolError):
    """An event that cannot be accepted: unknown type, bad payload, broken chain."""

    code = "event_rejected"


class UnknownEventType(EventRejected):
    code = "unknown_event_type"


class PayloadInvalid(EventRejected):
    code = "payload_invalid"


class ChainBroken(EventRejected):
    code = "chain_broken"


class TrustError(ProtocolError):
    """A certificate or signature that the trust list does not vouch for."""

    code = "untrusted"

"""The desk's refusals: one exception carrying the status and the sentence people read."""

from __future__ import annotations


class DeskRefusal(Exception):
    """An answer other than success: an HTTP status and one clear sentence.

    The desk's exception handler renders it as a page (never a stack trace); `back` is a link
    offered on that page.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        back: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.back = back
        self.headers = headers


class SignInNeeded(Exception):
    """No valid session: a page is redirected to the sign-in form, anything else gets 401."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or "sign in first")
        self.message = message

"""Errors raised by the web package (it imports nothing of bot; the CLI reports these)."""

from __future__ import annotations


class WebServerError(Exception):
    """The HTTP server could not bind its socket or start serving."""

"""Text as the bot stores it: what any database accepts, whatever a customer (or a forger) sent.

PostgreSQL refuses NUL (U+0000) in text columns and every driver refuses lone surrogates (U+D800
to U+DFFF, which JSON can carry as escapes), so one such character used to fail the whole turn
and lose the answer. The engine cleans every incoming message once, at its entry
(`bot.engine.Engine.turn_in`), before anything is parsed or stored: control characters are
dropped except newline and tab (a carriage return becomes a newline), and lone surrogates become
U+FFFD, the replacement character.
"""

from __future__ import annotations

import re

__all__ = ["storable", "storable_or_none"]

# C0 controls but \t (09) and \n (0A), DEL and the C1 controls; \r is handled before.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SURROGATES = re.compile("[\ud800-\udfff]")


def storable(text: str) -> str:
    """`text` without the characters a database refuses or a reader cannot see."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _SURROGATES.sub("\ufffd", _CONTROLS.sub("", text))


def storable_or_none(text: str | None) -> str | None:
    """`storable` for optional fields (names, payloads); None stays None."""
    return None if text is None else storable(text)

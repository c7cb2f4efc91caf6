"""Chat-form text preparation: emoji, emoticons, shouting punctuation and elongated words.

The shipped encoder's WordPiece vocabulary has no emoji: every one becomes ``[UNK]``, so
``👍`` and ``😡`` looked identical to the model. :func:`prepare` rewrites what people type in
chat into plain words the encoder knows — ``👍`` → ``thumbs up``, ``:(`` → ``frowning face``,
``sooooo`` → ``soo``, ``!!!!!`` → ``!!`` — and is applied before tokenisation in training and at
inference alike (every backend must call it, or the model sees text it was not trained on).
"""

from __future__ import annotations

import re

import emoji

#: Recorded in the model's meta.json (``text_preparation``): bump when :func:`prepare` changes
#: in a way that needs a retrain.
VERSION = "chat-v1"

# Emoticons → the words of the matching emoji name, so ``:)`` and ``🙂`` read alike. Longer
# forms first: the alternation tries them in order.
_EMOTICONS: tuple[tuple[str, str], ...] = (
    ("¯\\_(ツ)_/¯", "person shrugging"),
    ("¯\\(ツ)/¯", "person shrugging"),
    (">:-(", "angry face"),
    (">:(", "angry face"),
    (":'-(", "crying face"),
    (":'(", "crying face"),
    ("</3", "broken heart"),
    ("<3", "red heart"),
    (":-)", "smiling face"),
    (":)", "smiling face"),
    ("(:", "smiling face"),
    (":-]", "smiling face"),
    (":]", "smiling face"),
    ("=)", "smiling face"),
    ("^_^", "smiling face"),
    ("^^", "smiling face"),
    (":-D", "grinning face"),
    (":D", "grinning face"),
    ("xD", "grinning face"),
    ("XD", "grinning face"),
    (";-)", "winking face"),
    (";)", "winking face"),
    (":-P", "face with tongue"),
    (":P", "face with tongue"),
    (":-p", "face with tongue"),
    (":p", "face with tongue"),
    (":-(", "frowning face"),
    (":(", "frowning face"),
    ("):", "frowning face"),
    (":-[", "frowning face"),
    ("=(", "frowning face"),
    (":-/", "confused face"),
    (":/", "confused face"),
    (":-\\", "confused face"),
    (":\\", "confused face"),
    (":-|", "neutral face"),
    (":|", "neutral face"),
    (":-O", "surprised face"),
    (":O", "surprised face"),
    (":-o", "surprised face"),
    (":o", "surprised face"),
)
_EMOTICON_WORDS = dict(_EMOTICONS)
# An emoticon must stand alone (start/space before, end/space/punctuation after) so that
# ``http://``, ``a:b`` or ``(see: x)`` are left alone.
# Eye-first emoticons (``:)``, ``;-)``) may also follow a word directly ("love it:)").
_EYES_FIRST = [e for e, _ in _EMOTICONS if e[0] in ":;=>"]
_EMOTICON_RE = re.compile(
    r"(?:(?:(?<=\s)|^)(?:"
    + "|".join(re.escape(e) for e, _ in _EMOTICONS)
    + r")|(?<=\w)(?:"
    + "|".join(re.escape(e) for e in _EYES_FIRST)
    + r"))(?:"
    + "|".join(re.escape(e) for e, _ in _EMOTICONS)
    # ``:((`` and ``:)))`` repeat the mouth for emphasis.
    + r")*(?:\(+|\)+)?(?=\s|$|[.,!?;])"
)
_EMOTICON_ONE = re.compile("|".join(re.escape(e) for e, _ in _EMOTICONS))
# Skin tones and hair styles do not change the sentiment of an emoji; dropping them keeps
# the words short and the same for every variant.
_MODIFIERS = re.compile(
    r"_(?:(?:light|medium-light|medium|medium-dark|dark)_skin_tone|"
    r"(?:red|curly|white)_hair|bald)"
)
_EMOJI_NAME = re.compile(r"\x00([^\x00]*)\x00")
# The same emoji three times or more says no more than twice (and costs tokens).
_REPEATED_WORDS = re.compile(r"\b(\w+(?: \w+){0,5}?)(?: \1){2,}\b")
# Punctuation runs: ``!!!!`` → ``!!``, ``?!?!?`` → ``?!``, ``.....`` → ``...``.
_BANG_QUERY = re.compile(r"([!?])[!?]*([!?])")
_DOTS = re.compile(r"\.{4,}")
_OTHER_PUNCT = re.compile(r"([,;:*~\-_=#])\1{2,}")
# A letter three or more times in a row ("sooooo", "nooo") → twice; English words never have
# three identical letters in a row.
_ELONGATED = re.compile(r"([^\W\d_])\1{2,}")
_SPACES = re.compile(r"\s+")


def _emoji_words(name: str) -> str:
    name = _MODIFIERS.sub("", name.strip(":"))
    return " " + name.replace("_", " ").replace("-", " ") + " "


def _emoticon_run(match: re.Match[str]) -> str:
    words = [_EMOTICON_WORDS[e] for e in _EMOTICON_ONE.findall(match.group(0))]
    return " " + " ".join(words) + " "


def prepare(text: str, *, emoji_to_words: bool = True) -> str:
    """Rewrite chat forms in ``text`` into words a plain-text encoder knows.

    Emoji become their CLDR names in words (``👍`` → ``thumbs up``, skin tones dropped),
    emoticons the words of the matching emoji, runs of the same emoji or punctuation are cut to
    two, letters repeated three or more times to two. Whitespace is normalised; text without
    any chat form comes back unchanged apart from that. ``emoji_to_words=False`` leaves emoji
    as they are (for models whose tokenizer knows them).
    """
    out = text
    if emoji_to_words:
        out = emoji.demojize(out, delimiters=("\x00", "\x00"))
        out = _EMOJI_NAME.sub(lambda m: _emoji_words(m.group(1)), out)
    out = _EMOTICON_RE.sub(_emoticon_run, out)
    out = _SPACES.sub(" ", out).strip()
    out = _REPEATED_WORDS.sub(r"\1 \1", out) if emoji_to_words else out
    out = _BANG_QUERY.sub(r"\1\2", out)
    out = _DOTS.sub("...", out)
    out = _OTHER_PUNCT.sub(r"\1\1", out)
    out = _ELONGATED.sub(r"\1\1", out)
    return out


def without_chat_forms(text: str) -> str:
    """``text`` with emoji and emoticons removed (what language detection looks at)."""
    return _SPACES.sub(" ", _EMOTICON_RE.sub(" ", emoji.replace_emoji(text, replace=" "))).strip()

"""Keep secrets out of what is stored: a raw alert body is kept for operators, its secret is not."""

import re
from collections.abc import Iterable

REDACTED = "[redacted]"
_MARKER_ROOM = 32
# Shorter known secrets are only redacted as the secret field: replacing every occurrence of a
# two-letter string would mangle the rest of the body.
_MIN_REPLACED_LENGTH = 4

# The secret field wherever an alert body can carry it: a JSON member (string or bare value) or a
# key=value pair, whose value runs to the end of the line or to the next ", key=" (as parsed).
_JSON_SECRET = re.compile(r'("secret"\s*:\s*)("(?:[^"\\]|\\.)*"?|[^,}\s]*)', re.IGNORECASE)
_PAIR_SECRET = re.compile(
    r"((?:^|[\s,])secret\s*=)(.*?)(?=,\s*[A-Za-z_][A-Za-z0-9_]*\s*=|$)",
    re.IGNORECASE | re.MULTILINE,
)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` without the values of any ``secret`` field, nor any of ``secrets`` anywhere."""
    for secret in secrets:
        if secret and len(secret) >= _MIN_REPLACED_LENGTH:
            text = text.replace(secret, REDACTED)
    text = _JSON_SECRET.sub(lambda m: f'{m.group(1)}"{REDACTED}"', text)
    return _PAIR_SECRET.sub(lambda m: f"{m.group(1)}{REDACTED}", text)


def bounded(text: str, limit: int) -> str:
    """``text`` cut to about ``limit`` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    kept = max(limit - _MARKER_ROOM, 0)
    return f"{text[:kept]}…[{len(text) - kept} more characters]"

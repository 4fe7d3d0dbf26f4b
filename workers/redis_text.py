"""Redis answers bytes (the clients are made without ``decode_responses``, for the binary
series); the stores' records and names are text."""

from __future__ import annotations


def text(value: bytes | str) -> str:
    """One answer as text."""
    return value.decode() if isinstance(value, bytes) else value


def decoded(raw: dict) -> dict[str, str]:
    """A hash's answer (``HGETALL``) as text keys and values."""
    return {text(k): text(v) for k, v in raw.items()}

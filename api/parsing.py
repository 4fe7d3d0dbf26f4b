"""Parsing bodies and query strings into schema models: 415, 413 and 400 happen here."""

from __future__ import annotations

import json
import re
from typing import Any, NoReturn, TypeVar

from flask import request
from pydantic import BaseModel

from api.errors import UnsupportedMediaType, ValidationFailed
from api.schemas import MAX_PARAMS_DEPTH

M = TypeVar("M", bound=BaseModel)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_body(model: type[M]) -> M:
    """The JSON body as ``model``; anything else is an error in the envelope."""
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("the body must be JSON (Content-Type: application/json)")
    raw = request.get_data(cache=True)  # MAX_CONTENT_LENGTH makes an oversize body a 413
    try:
        data = json.loads(raw, parse_constant=_no_constants)
    except RecursionError:
        _refuse_too_deep(raw)
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailed("the body is not valid JSON", {"body": "not valid JSON"}) from None
    if not isinstance(data, dict):
        raise ValidationFailed("the body must be a JSON object", {"body": "must be an object"})
    if not _surely_no_surrogates(raw):
        _refuse_lone_surrogates(data, raw)
    return model.model_validate(data)


def _surely_no_surrogates(raw: bytes) -> bool:
    """Whether ``raw`` cannot hold a lone surrogate, seen from its bytes alone: ASCII UTF-8
    (no NUL, so not UTF-16 or -32) decodes to ASCII, and only a ``\\u`` escape could then
    make anything else. Most bodies pass, so the full check below is rarely paid."""
    return raw.isascii() and b"\x00" not in raw and b"\\u" not in raw


def _refuse_lone_surrogates(data: Any, raw: bytes) -> None:
    """Lone surrogates decode from JSON escapes (or UTF-8 read with ``surrogatepass``, as
    ``json.loads`` reads bytes) but cannot be stored anywhere."""
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationFailed(
            "the body holds an invalid character (a lone surrogate)",
            {"body": "invalid character"},
        ) from None
    except RecursionError:
        _refuse_too_deep(raw)


def _refuse_too_deep(raw: bytes) -> NoReturn:
    """A body too deep for the parser: a 400 naming the top-level field that nests too deeply
    (``params``, in practice), as the schema's own bound would have named it. Only this error
    path pays for the scan."""
    field = _deepest_field(raw)
    if field is None:
        raise ValidationFailed("the body is nested too deeply", {"body": "nested too deeply"})
    reason = f"nested deeper than {MAX_PARAMS_DEPTH} levels"
    raise ValidationFailed(f"{field}: {reason}", {field: reason})


_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\],]')


def _deepest_field(raw: bytes) -> str | None:
    """The key of the body's top-level member that nests deepest (None if not an object)."""
    try:
        text = raw.decode(json.detect_encoding(raw), "surrogatepass")
    except (UnicodeDecodeError, LookupError):
        return None
    depth = deepest = 0
    key = found = None
    for token in _JSON_TOKENS.finditer(text):  # strings whole, so brackets in them do not count
        char = token.group()
        if char in "{[":
            depth += 1
            if depth > deepest:
                deepest, found = depth, key
        elif char in "}]":
            depth -= 1
        elif depth == 1:  # a key (or, after it, a string value), or the comma ending a member
            key = None if char == "," else (key or char)
    try:
        return None if found is None else json.loads(found)
    except ValueError:
        return None


def parse_query(model: type[M]) -> M:
    return model.model_validate(request.args.to_dict())

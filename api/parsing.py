"""Parsing bodies and query strings into schema models: 415, 413 and 400 happen here."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel

from api.errors import UnsupportedMediaType, ValidationFailed

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
        raise ValidationFailed(
            "the body is nested too deeply", {"body": "nested too deeply"}
        ) from None
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailed("the body is not valid JSON", {"body": "not valid JSON"}) from None
    if not isinstance(data, dict):
        raise ValidationFailed("the body must be a JSON object", {"body": "must be an object"})
    if not _surely_no_surrogates(raw):
        _refuse_lone_surrogates(data)
    return model.model_validate(data)


def _surely_no_surrogates(raw: bytes) -> bool:
    """Whether ``raw`` cannot hold a lone surrogate, seen from its bytes alone: ASCII UTF-8
    (no NUL, so not UTF-16 or -32) decodes to ASCII, and only a ``\\u`` escape could then
    make anything else. Most bodies pass, so the full check below is rarely paid."""
    return raw.isascii() and b"\x00" not in raw and b"\\u" not in raw


def _refuse_lone_surrogates(data: Any) -> None:
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
        raise ValidationFailed(
            "the body is nested too deeply", {"body": "nested too deeply"}
        ) from None


def parse_query(model: type[M]) -> M:
    return model.model_validate(request.args.to_dict())

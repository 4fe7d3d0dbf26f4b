"""``GET /openapi.json``."""

from __future__ import annotations

from functools import cache

from flask import Blueprint

from api.openapi import build_document

bp = Blueprint("openapi", __name__, url_prefix="/api/custom-calculations")


@cache
def _document() -> dict:
    return build_document()


@bp.get("/openapi.json")
def openapi():
    return _document()

"""``GET /universe``: the symbols the service has data for, with their sectors (read only)."""

from __future__ import annotations

from flask import Blueprint

from api.extension import calc
from db.session import session_scope
from db.universe import load_universe

bp = Blueprint("universe", __name__, url_prefix="/api/custom-calculations")


@bp.get("/universe")
def universe():
    with session_scope(calc().market_engine) as session:
        found = load_universe(session=session)
    symbols = [{"symbol": s.symbol, "name": s.name, "sector": s.sector} for s in found.symbols]
    return {
        "symbols": symbols,
        "sectors": sorted({s.sector for s in found.symbols if s.sector}),
        "first_date": found.first_date,
        "last_date": found.last_date,
    }

"""GET /healthz: 200 when the app can reach its database, 503 when it cannot (DESIGN §4)."""

from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy import text

from kassa.extensions import csrf, db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@csrf.exempt
def healthz():
    try:
        db.session.execute(text("SELECT 1"))
        db.session.rollback()
    except Exception:
        db.session.rollback()
        return jsonify(status="error", database="unreachable"), 503
    return jsonify(status="ok", database="ok")

"""The dashboard shell: home page, the View test data switch and the user's language."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, redirect, request, url_for
from flask_login import current_user, login_required

from kassa.blueprints.auth import safe_next
from kassa.i18n import LANGUAGES
from kassa.rendering import render_page
from kassa.services.accounts import users

bp = Blueprint("dashboard", __name__)

# Sections of the top navigation whose pages arrive with later capabilities; until then their
# entry shows what the section will hold and what to do first.
UPCOMING_SECTIONS = {"links", "payments", "subscriptions", "reports"}


@bp.app_context_processor
def _navigation():
    def nav_url(endpoint: str) -> str:
        if endpoint in current_app.view_functions:
            return url_for(endpoint)
        return url_for("dashboard.section", name=endpoint.split(".")[0])

    return {"nav_url": nav_url}


@bp.get("/")
@login_required
def home():
    return render_page("dashboard/home.html", active_nav=None)


@bp.get("/section/<name>")
@login_required
def section(name: str):
    if name not in UPCOMING_SECTIONS:
        abort(404)
    return render_page("dashboard/section.html", name=name, active_nav=name)


@bp.post("/preferences/test-data")
@login_required
def toggle_test_data():
    users.set_view_test_data(current_user._get_current_object(), request.form.get("value") == "1")
    return redirect(safe_next(request.form.get("next"), url_for("dashboard.home")), code=303)


@bp.post("/preferences/language")
@login_required
def set_language():
    language = request.form.get("language", "")
    if language in LANGUAGES:
        users.set_language(current_user._get_current_object(), language)
    return redirect(safe_next(request.form.get("next"), url_for("dashboard.home")), code=303)

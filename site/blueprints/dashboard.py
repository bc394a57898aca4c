"""The dashboard shell: home page, the View test data switch and the user's language."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, redirect, url_for
from flask_login import current_user, login_required
from wtforms import StringField
from wtforms.validators import AnyOf

from kassa.authz import visible_modes
from kassa.blueprints.auth import safe_next
from kassa.forms import FlagField, Form
from kassa.i18n import LANGUAGES
from kassa.models import Permission
from kassa.rendering import render_page
from kassa.services.accounts import users
from kassa.services.backoffice import home as home_service

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
    """B1: what needs the merchant (most urgent first), today's figures, and the onboarding steps left."""
    user = current_user._get_current_object()
    account = user.account
    manages_payments = user.can(Permission.MANAGE_PAYMENTS)
    modes = visible_modes()
    steps = [step for step in home_service.onboarding(account) if not step.done]
    return render_page(
        "dashboard/home.html", active_nav=None, steps=steps, manages_payments=manages_payments,
        attention=home_service.attention(account, user.id, modes, manages_payments),
        figures=home_service.figures(account, modes) if manages_payments else None,
        time_left=home_service.time_left,
    )


@bp.get("/section/<name>")
@login_required
def section(name: str):
    if name not in UPCOMING_SECTIONS:
        abort(404)
    return render_page("dashboard/section.html", name=name, active_nav=name)


class PreferenceForm(Form):
    """A switch in the page header; `next` is the page to go back to (same site only, see `safe_next`)."""

    next = StringField()


class ViewTestDataForm(PreferenceForm):
    value = FlagField()


class LanguageForm(PreferenceForm):
    # An unknown language changes nothing (the switch only offers known ones).
    language = StringField(validators=[AnyOf(LANGUAGES)])


@bp.post("/preferences/test-data")
@login_required
def toggle_test_data():
    form = ViewTestDataForm()
    users.set_view_test_data(current_user._get_current_object(), form.value.data)
    return redirect(safe_next(form.next.data, url_for("dashboard.home")), code=303)


@bp.post("/preferences/language")
@login_required
def set_language():
    form = LanguageForm()
    if form.validate():
        users.set_language(current_user._get_current_object(), form.language.data)
    return redirect(safe_next(form.next.data, url_for("dashboard.home")), code=303)

"""Kassa: payment links, mobile checkout and payment management. `create_app()` builds the Flask app."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class KassaFlask(Flask):
    """Flask, remembering which hooks and views are coroutine functions instead of asking `inspect` again for
    each of the ~11 it calls per request (Q12: ~3% of a checkout GET). The answer for a function never changes;
    an `async def` view would still be wrapped, as Flask does."""

    def ensure_sync(self, func: Any) -> Any:
        known = self.__dict__.setdefault("_kassa_sync", {})
        try:
            wrapped = known.get(func)
        except TypeError:  # an unhashable callable: ask Flask every time
            return super().ensure_sync(func)
        if wrapped is None:
            wrapped = known[func] = super().ensure_sync(func)
        return wrapped


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """App factory. `config` overrides what the environment says (tests pass their database here).

    M4: the imports below stay inside the factory on purpose. This file is the package `kassa` itself, run
    by every `import kassa.<anything>`; importing the app's modules here would make `import kassa.money`
    (unit tests, import-linter, alembic) load Flask, every blueprint and every service."""
    instance_path = Path(os.environ.get("KASSA_INSTANCE_PATH") or PROJECT_ROOT / "instance").resolve()
    app = KassaFlask(__name__, instance_path=str(instance_path), instance_relative_config=True)
    instance_path.mkdir(parents=True, exist_ok=True)

    from kassa.config import build_config, missing_production_secrets

    app.config.update(build_config(instance_path))
    if config:
        app.config.update(config)
    missing = missing_production_secrets()
    if missing:  # G8: refuse to start rather than run on per-machine keys kept in the instance folder
        raise RuntimeError(
            f"KASSA_BASE_URL is https:// (production), but {' and '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not set. Set them in the environment, the same on every "
            "machine (docs/deploy.md, Environment).")

    from kassa import logs, metrics

    logs.configure(app)
    metrics.register(app)  # first: its request hooks time (and give a request id to) everything after them

    _init_extensions(app)
    from kassa import forms

    forms.register(app)  # before the blueprints: their <int:...> rules use the bounded converter (H9)
    _register_blueprints(app)
    from kassa.extensions import drop_idle_limiter_hook

    drop_idle_limiter_hook(app)  # after the blueprints: a blueprint-wide limit keeps the hook

    from kassa import cli, errorpages, i18n, input_guard, security, template_helpers, wiring

    i18n.register_template_helpers(app)
    template_helpers.register(app)
    security.init_security_headers(app)
    errorpages.register(app)
    input_guard.register(app)
    cli.register(app)
    wiring.wire(app)  # M7: handlers, tick tasks and filters, each kind declared in one place
    from kassa.blueprints import checkout_first_visit

    checkout_first_visit.install(app)  # Q12: last, so it can check every hook the app has
    return app


def _init_extensions(app: Flask) -> None:
    from kassa.extensions import babel, csrf, db, htmx, limiter, login_manager, mail, migrate
    from kassa.i18n import select_locale, select_timezone

    db.init_app(app)
    from kassa.database import tune_engine

    with app.app_context():
        for engine in db.engines.values():
            tune_engine(engine)
    migrate.init_app(app, db, directory=str(Path(__file__).parent / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone)
    htmx.init_app(app)
    mail.init_app(app)
    limiter.init_app(app)

    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "basic"

    from kassa import login

    login.init_login(app)


def _register_blueprints(app: Flask) -> None:
    from kassa import assets
    from kassa.blueprints import (
        api,
        auth,
        billing_portal,
        checkout,
        crm,
        dashboard,
        disputes,
        embed,
        exports,
        health,
        invoice_pay,
        invoices,
        link_editor,
        links,
        media,
        payments,
        products,
        promo_codes,
        quote_page,
        quotes,
        reports,
        segments,
        settings,
        subscriptions,
        webhooks,
        workflows,
    )

    for module in (health, auth, dashboard, settings, media, links, link_editor, products, promo_codes, embed, checkout, crm,
                   invoice_pay, payments, invoices, disputes, subscriptions, billing_portal, reports, exports, webhooks,
                   workflows, quote_page, quotes, segments, api, assets):
        app.register_blueprint(module.bp)
    app.register_blueprint(api.docs_bp)
    app.register_blueprint(reports.payouts_bp)
    app.register_blueprint(workflows.tasks_bp)
    app.jinja_env.globals["asset_url"] = assets.asset_url


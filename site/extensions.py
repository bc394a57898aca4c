"""Flask extensions, created unbound here and bound to the app in create_app()."""

from __future__ import annotations

from flask_babel import Babel
from flask_htmx import HTMX
from flask_limiter import Limiter
from flask_login import LoginManager
from flask_mail import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect

from kassa.database import Base
from kassa.netutil import client_ip

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
htmx = HTMX()
mail = Mail()
# Default key is the client address as resolved by the trusted-proxy rule, never a raw header.
limiter = Limiter(key_func=client_ip, default_limits=[])


def drop_idle_limiter_hook(app) -> None:
    """Q12: Flask-Limiter's before_request hook enforces only application, default and blueprint limits. Kassa
    declares none of those: every limit is a `@limiter.limit` on its view, enforced by that decorator (which
    does not need the hook). Left in, the hook resolved nothing on every request, ~5% of a checkout GET. It
    stays when any such limit exists, so adding one later still works."""
    manager = limiter.limit_manager
    if manager.application_limits or manager.default_limits or getattr(manager, "_blueprint_limits", True):
        return
    hooks = app.before_request_funcs.get(None, [])
    if limiter._check_request_limit in hooks:
        hooks.remove(limiter._check_request_limit)

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

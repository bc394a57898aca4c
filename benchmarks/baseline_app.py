"""The baselines throughput figures are divided by, served by the same gunicorn as Kassa.

`limit_app` (Q12) is the limit: a bare Flask route returning a precomputed bytes string, exactly the bytes
of the page under test (fetched once from the running app and written to the file KASSA_BASELINE_BODY). A
ratio against it shows everything Kassa does per request on top of Flask handing gunicorn those bytes:
routing, the database, sessions, CSRF, CSP, rendering. `checkout_get_rps` and `dashboard_shell_rps` use it.

`app` renders a table of the same size (KASSA_BASELINE_BYTES) through a Jinja loop, with the Server-Timing
header Kassa sends; the payments index benchmark still compares server times against it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from flask import Flask, g, render_template_string

app = Flask(__name__)


@app.before_request
def _start() -> None:
    g.started = time.perf_counter()


@app.after_request
def _timing(response):
    # The same Server-Timing header Kassa sends, so server times are compared like for like.
    response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - g.started) * 1000:.2f}"
    return response


SIZE = int(os.environ.get("KASSA_BASELINE_BYTES", "5000"))
ROW = "<tr><td>{{ i }}</td><td>Example row with some text in it</td></tr>\n"
TEMPLATE = (
    "<!doctype html><html><head><title>{{ title }}</title></head><body><table>"
    "{% for i in rows %}" + ROW + "{% endfor %}</table></body></html>"
)
ROWS = list(range(max(1, SIZE // 55)))


@app.get("/healthz")
def healthz():
    return {"status": "ok"}


@app.get("/")
def page():
    return render_template_string(TEMPLATE, title="Baseline", rows=ROWS)


limit_app = Flask(__name__)
_BODY_FILE = os.environ.get("KASSA_BASELINE_BODY")
BODY = Path(_BODY_FILE).read_bytes() if _BODY_FILE else b"<!doctype html><title>Baseline</title>"


@limit_app.get("/healthz")
def limit_healthz():
    return {"status": "ok"}


@limit_app.get("/")
def limit_page():
    return BODY, 200, {"Content-Type": "text/html; charset=utf-8"}

"""The baseline every throughput figure is divided by: a bare Flask route rendering a template.

The template's size is set to match the page under test (KASSA_BASELINE_BYTES), so the ratio shows
what Kassa's own work costs on top of Flask + Jinja serving the same number of bytes.
"""

from __future__ import annotations

import os
import time

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

"""Checkout figures (issue 5, Q12): page weight of every link configuration (benchmarks/checkout_configs.py) in
every language, GET throughput against the limit (a bare Flask route returning the same bytes), pay latency, and
the page's Lighthouse scores (mobile) when Lighthouse is installed (`npm i -g lighthouse@12`)."""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

from benchmarks import checkout_configs
from benchmarks.common import (
    LIFTED_CHECKOUT_LIMITS,
    OUT_DIR,
    cpu_ms_per_request,
    emit,
    gunicorn,
    prepare_database,
    wrk_rps,
)
from kassa.i18n import LANGUAGES

CARD_FORM = {
    "email": "bench@example.com", "method": "card", "card_number": "4242 4242 4242 4242", "card_expiry": "12 / 34",
    "card_cvc": "123", "card_name": "Bench Buyer", "billing_line1": "Main 1", "billing_city": "Utrecht",
    "billing_postal_code": "3511 AA", "billing_country": "NL", "first_name": "Bench", "last_name": "Buyer",
    "shipping_same": "1",
}


def _opener():
    jar = http.cookiejar.CookieJar()
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))


def _test_path(name: str) -> str:
    """The signed test URL path of a demo link (H7: the only way into a test checkout), from the database
    and secret key through the app."""
    from kassa import create_app
    from kassa.extensions import db
    from kassa.models import PaymentLink
    from kassa.services.links.links import sign_test_link

    app = create_app()
    with app.app_context():
        link = db.session.query(PaymentLink).filter_by(name=name).one()
        return f"/pay/{link.slug}/test/{sign_test_link(link)}"


def configuration_paths() -> dict[str, str]:
    """Q12: one link per configuration (benchmarks/checkout_configs.py) on the demo account; name → start URL path."""
    from kassa import create_app
    from kassa.actor import Actor
    from kassa.cli import DEMO_EMAIL
    from kassa.extensions import db
    from kassa.models import User

    app = create_app()
    with app.app_context():
        user = db.session.query(User).filter_by(email=DEMO_EMAIL).one()
        links = checkout_configs.create_configuration_links(Actor(user=user, account_id=user.account_id), "EUR")
        return {name: checkout_configs.start_path(link, live) for name, (link, live) in links.items()}


def page_bytes(base: str, path: str) -> dict[str, int]:
    """HTML, CSS and JS bytes of the checkout page a fresh visitor of `path` lands on."""
    opener = _opener()
    page_url = opener.open(base + path).geturl()
    return checkout_configs.page_bytes(lambda p: opener.open(base + p).read(), page_url[len(base):])


def pay_latency_ms(base: str, path: str, n: int) -> list[float]:
    timings = []
    for i in range(n):
        opener = _opener()
        response = opener.open(base + path)
        page_url = response.geturl()
        token = re.search(rb'name="csrf_token" value="([^"]+)"', response.read()).group(1).decode()
        form = {**CARD_FORM, "email": f"bench{i}@example.com", "csrf_token": token}
        data = urllib.parse.urlencode(form).encode()
        start = time.perf_counter()
        confirmation = opener.open(page_url, data=data).read()  # POST, then follow the 303 to the confirmation
        timings.append((time.perf_counter() - start) * 1000)
        if b"Thank you" not in confirmation:
            raise RuntimeError("the benchmark payment did not reach the confirmation page")
    return timings


THROUGHPUT_ROUNDS = 3


def interleaved_rps(url: str, baseline_url: str, *, seconds: int = 3) -> dict:
    """Requests per second of `url` and of the baseline, measured in alternating rounds while both servers run
    (an idle gunicorn costs nothing): on a shared machine the load drifts within a minute, and measuring one
    after the other would divide two different machines. Also the servers' CPU milliseconds per request
    (Q12), which the machine's load moves far less than requests per second: their ratio is the figure to
    trust when the machine is busy (`load_average` is reported beside them)."""
    wrk_rps(url, seconds=2)
    wrk_rps(baseline_url, seconds=2)
    base, baseline_base = (f"{parts.scheme}://{parts.netloc}" for parts in map(urllib.parse.urlsplit, (url, baseline_url)))
    pairs = [(cpu_ms_per_request(url, base, seconds=seconds), cpu_ms_per_request(baseline_url, baseline_base,
                                                                                  seconds=seconds))
             for _ in range(THROUGHPUT_ROUNDS)]
    return {
        "value": statistics.mean(a[0] for a, _b in pairs), "baseline": statistics.mean(b[0] for _a, b in pairs),
        "rounds": [round(a[0] / b[0], 3) for a, b in pairs],
        "cpu_ms": round(statistics.median(a[1] for a, _b in pairs), 3),
        "baseline_cpu_ms": round(statistics.median(b[1] for _a, b in pairs), 3),
        "load_average": round(os.getloadavg()[0], 1),
    }


LIGHTHOUSE_CATEGORIES = ("performance", "accessibility", "best-practices")
LIGHTHOUSE_RUNS = 3


def lighthouse_scores(new_url: Callable[[], str]) -> dict[str, int] | None:
    """Lighthouse's mobile scores (0-100) in Debian's Chromium, the median of LIGHTHOUSE_RUNS runs, each on a
    page from `new_url()`; None when Lighthouse is missing. Several runs because one run's blocking time
    follows whatever else the (shared) machine is doing."""
    lighthouse = shutil.which("lighthouse")
    if lighthouse is None:
        return None
    env = {**os.environ, "CHROME_PATH": os.environ.get("CHROME_PATH") or "/usr/bin/chromium"}
    runs: dict[str, list[float]] = {name: [] for name in LIGHTHOUSE_CATEGORIES}
    with tempfile.TemporaryDirectory(prefix="kassa-lighthouse-") as tmp:
        report = Path(tmp) / "report.json"
        for _ in range(LIGHTHOUSE_RUNS):
            done = subprocess.run(
                [lighthouse, new_url(), "--quiet", "--output=json", f"--output-path={report}", "--form-factor=mobile",
                 f"--only-categories={','.join(LIGHTHOUSE_CATEGORIES)}",
                 "--chrome-flags=--headless=new --no-sandbox"],
                env=env, capture_output=True, text=True, timeout=300,
            )
            if done.returncode != 0:
                raise RuntimeError(f"lighthouse exited with {done.returncode}: {(done.stderr or done.stdout)[-600:]}")
            categories = json.loads(report.read_text())["categories"]
            for name in LIGHTHOUSE_CATEGORIES:
                runs[name].append(categories[name]["score"] * 100)
    return {name: round(statistics.median(scores)) for name, scores in runs.items()}


def _lighthouse_record(scores: dict[str, int] | None) -> dict:
    if scores is None:
        record = {"bench": "checkout_lighthouse", "skipped": "lighthouse is not installed (npm i -g lighthouse@12)"}
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        (OUT_DIR / "checkout_lighthouse.json").write_text(json.dumps(record) + "\n")
        print(json.dumps(record), flush=True)
        return record
    return emit("checkout_lighthouse", scores["performance"], "score", baseline=100, n=LIGHTHOUSE_RUNS,
                performance=scores["performance"], accessibility=scores["accessibility"],
                best_practices=scores["best-practices"], form_factor="mobile", target="100/100/100")


def main() -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="kassa-bench-") as tmp:
        # Many payments with one test card: lift the card-testing limits for this server only.
        env = prepare_database(Path(tmp) / "instance")
        env.update(LIFTED_CHECKOUT_LIMITS)
        os.environ.update(env)
        path = _test_path("Webshop – house blend")
        configurations = configuration_paths()
        with gunicorn("wsgi:app", env) as base:
            sizes = {name: {language: page_bytes(base, f"{start}?lang={language}") for language in LANGUAGES}
                     for name, start in configurations.items()}
            opener = _opener()
            checkout_url = opener.open(base + path).geturl()
            # Q12: the limit, a bare route returning exactly the bytes of the page wrk loads (one fresh fetch, so
            # with a CSRF token and nonce of the same length).
            body = Path(tmp) / "checkout_page.html"
            body.write_bytes(_opener().open(checkout_url).read())
            body_bytes = body.stat().st_size
            with gunicorn("benchmarks.baseline_app:limit_app", {"KASSA_BASELINE_BODY": str(body)}) as bare:
                throughput = interleaved_rps(checkout_url, bare + "/")
            timings = pay_latency_ms(base, path, 60)[10:]  # the first ten warm the server up
        # Last, apart from the throughput figures (its browser would compete with them): fresh sessions of the
        # link whose page wrk loaded.
        with gunicorn("wsgi:app", env) as base:
            scores = lighthouse_scores(lambda: _opener().open(base + path).geturl())
    largest = max(((name, language) for name in sizes for language in sizes[name]),
                  key=lambda key: sizes[key[0]][key[1]]["total"])
    return [
        emit("checkout_page_bytes", sizes[largest[0]][largest[1]]["total"], "bytes",
             baseline=checkout_configs.BUDGET_BYTES, n=len(sizes) * len(LANGUAGES), target="< 30 KB",
             largest=f"{largest[0]} ({largest[1]})",
             configurations={name: {"en": by_language["en"],
                                    "max_total": max(s["total"] for s in by_language.values())}
                             for name, by_language in sizes.items()}),
        emit("checkout_get_rps", throughput["value"], "req/s", baseline=throughput["baseline"], n=None,
             target_ratio=">= 0.6", rounds=throughput["rounds"], page_bytes=body_bytes,
             baseline_kind="bare Flask route returning the same bytes", cpu_ms=throughput["cpu_ms"],
             baseline_cpu_ms=throughput["baseline_cpu_ms"],
             cpu_ratio=round(throughput["baseline_cpu_ms"] / throughput["cpu_ms"], 3),
             load_average=throughput["load_average"]),
        emit("checkout_pay_p50_ms", statistics.median(timings), "ms", n=len(timings),
             p95=round(sorted(timings)[int(len(timings) * 0.95) - 1], 1)),
        _lighthouse_record(scores),
    ]


if __name__ == "__main__":
    main()

"""Checkout figures (issue 5): page weight, GET throughput against a bare template, pay latency."""

from __future__ import annotations

import http.cookiejar
import re
import statistics
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from benchmarks.common import emit, gunicorn, prepare_database, wrk_rps

CARD_FORM = {
    "email": "bench@example.com", "method": "card", "card_number": "4242 4242 4242 4242", "card_expiry": "12 / 34",
    "card_cvc": "123", "card_name": "Bench Buyer", "billing_line1": "Main 1", "billing_city": "Utrecht",
    "billing_postal_code": "3511 AA", "billing_country": "NL", "first_name": "Bench", "last_name": "Buyer",
    "shipping_same": "1",
}


def _opener():
    jar = http.cookiejar.CookieJar()
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))


def _slug(_base: str, name: str) -> str:
    """The public slug of a demo link (read from the database through the app)."""
    from kassa import create_app
    from kassa.extensions import db
    from kassa.models import PaymentLink

    app = create_app()
    with app.app_context():
        return db.session.query(PaymentLink).filter_by(name=name).one().slug


def page_bytes(base: str, slug: str) -> dict[str, int]:
    opener = _opener()
    html = opener.open(f"{base}/pay/{slug}?mode=test").read()
    sizes = {"html": len(html)}
    for kind, pattern in (("css", rb'href="(/assets/[^"]+)"'), ("js", rb'src="(/assets/[^"]+)"')):
        sizes[kind] = sum(len(opener.open(base + path.decode().replace("&amp;", "&")).read())
                          for path in re.findall(pattern, html))
    return sizes


def pay_latency_ms(base: str, slug: str, n: int) -> list[float]:
    timings = []
    for i in range(n):
        opener = _opener()
        response = opener.open(f"{base}/pay/{slug}?mode=test")
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


def main() -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="kassa-bench-") as tmp:
        # Many payments with one test card: lift the card-testing limits for this server only.
        env = prepare_database(Path(tmp) / "instance")
        env.update({"KASSA_RISK_CARD_USES": "1000000", "KASSA_RISK_IP_DECLINES": "1000000",
                    "KASSA_CHECKOUT_START_LIMIT": "100000 per minute", "KASSA_CHECKOUT_SUBMIT_LIMIT": "100000 per minute"})
        import os

        os.environ.update(env)
        slug = _slug("", "Webshop – house blend")
        card_slug = _slug("", "Barista course (6 lessons)")
        with gunicorn("wsgi:app", env) as base:
            # "The card checkout": card + billing address (the default link settings).
            sizes = page_bytes(base, card_slug)
            with_shipping = page_bytes(base, slug)
            opener = _opener()
            checkout_url = opener.open(f"{base}/pay/{slug}?mode=test").geturl()
            wrk_rps(checkout_url, seconds=2)
            value = wrk_rps(checkout_url, seconds=5)
            timings = pay_latency_ms(base, slug, 60)[10:]  # the first ten warm the server up
        with gunicorn("benchmarks.baseline_app:app", {"KASSA_BASELINE_BYTES": str(sizes["html"])}) as base:
            wrk_rps(base + "/", seconds=2)
            baseline = wrk_rps(base + "/", seconds=5)
    total = sizes["html"] + sizes["css"] + sizes["js"]
    return [
        emit("checkout_page_bytes", total, "bytes", baseline=30 * 1024, n=1, html=sizes["html"], css=sizes["css"],
             js=sizes["js"], target="< 30 KB", with_shipping_address=sum(with_shipping.values())),
        emit("checkout_get_rps", value, "req/s", baseline=baseline, n=None, target_ratio=">= 0.6"),
        emit("checkout_pay_p50_ms", statistics.median(timings), "ms", n=len(timings),
             p95=round(sorted(timings)[int(len(timings) * 0.95) - 1], 1)),
    ]


if __name__ == "__main__":
    main()

"""api_checkout_session_page: what a checkout session opened by the API (I2) costs its buyer's page, against the
page every ordinary visit to the link gets from the page cache (Q12), in the same run, on SQLite, in process.

A session opened by the API is a page of its own (the buyer's email, the shop's success page): it is rendered for
that session on every view and never stored in the cache, where one-off pages would push the links' shared copies
out (the cache keeps 128). Figures (server time through the WSGI app, p50 of each):

- baseline: GET of an ordinary visit's page, served from the cached copy (a warm cache);
- `first_view`: the first GET of an API session's page (rendered);
- `repeat_view`: the same page again (rendered again);
- `create`: POST /api/v1/checkout/sessions (the key check, the audit row, the session row).

KASSA_BENCH_SESSIONS changes how many sessions are opened (default 200).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, emit

WARMUP = 20


def _ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def run(count: int) -> list[dict]:
    from flask_migrate import upgrade

    from kassa import create_app
    from kassa.actor import Actor
    from kassa.services.accounts.users import sign_up
    from kassa.services.api.keys import create_key
    from kassa.services.links.link_drafts import ItemDraft, LinkDraft
    from kassa.services.links.links import create_link, sign_test_link

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        os.environ["KASSA_INSTANCE_PATH"] = str(workdir / "instance")
        app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{workdir / 'bench.db'}",
                          "KASSA_BASE_URL": "http://kassa.bench", "RATELIMIT_STORAGE_URI": "memory://",
                          "RATELIMIT_ENABLED": False, "KASSA_API_TEST_RATE_LIMIT": "1000000 per second"})
        with app.app_context():
            upgrade(directory=str(ROOT / "site" / "migrations"))
            owner = sign_up(company_name="Bench Bikes", name="Owner", email="owner@bench.example",
                            password="bench password 2026")
            actor = Actor(user=owner, account_id=owner.account_id)
            link = create_link(actor, LinkDraft(name="Service", currency="USD", items=[ItemDraft(
                name="Bike service", unit_price="25.00", quantity="1")]), "en")
            secret = create_key(actor, "Bench", "test")[1]
            start_path = f"/pay/{link.slug}/test/{sign_test_link(link)}"
        headers = {"Authorization": f"Bearer {secret}"}
        client = app.test_client()

        # Baseline: an ordinary visit's page from the warm cache (the client's cookie: Flask's own path).
        visit = client.get(start_path).headers["Location"]
        baseline = []
        for i in range(WARMUP + count):
            started = time.perf_counter()
            answer = client.get(visit)
            if i >= WARMUP:
                baseline.append(time.perf_counter() - started)
        if answer.status_code != 200:
            raise RuntimeError(f"the checkout page answered {answer.status_code}")

        create, first, repeat = [], [], []
        for i in range(count):
            started = time.perf_counter()
            made = client.post("/api/v1/checkout/sessions", headers=headers,
                               data={"payment_link": f"plink_{link.id}", "customer_email": f"buyer{i}@bench.example"})
            create.append(time.perf_counter() - started)
            if made.status_code != 200:
                raise RuntimeError(f"creating a session answered {made.status_code}: {made.get_data()[:200]}")
            path = "/checkout/" + made.json["url"].rsplit("/", 1)[-1]
            started = time.perf_counter()
            answer = client.get(path)
            first.append(time.perf_counter() - started)
            started = time.perf_counter()
            client.get(path)
            repeat.append(time.perf_counter() - started)
            if f"buyer{i}@bench.example" not in answer.get_data(as_text=True):
                raise RuntimeError("the session's page lacks its email")
        base = _ms(baseline)
        return [emit(f"api_checkout_session_page_{name}", _ms(samples), "ms", baseline=base, n=count,
                     baseline_is="an ordinary visit's checkout page from the page cache, p50", db="sqlite")
                for name, samples in (("first_view", first), ("repeat_view", repeat), ("create", create))]


def main() -> None:
    run(int(os.environ.get("KASSA_BENCH_SESSIONS", "200")))


if __name__ == "__main__":
    main()

"""G1: the production profile runs: `flask kassa run-prod` starts nginx in front of two gunicorn servers and two
workers on PostgreSQL and Redis, and a merchant can't tell which server answers: a session and a CSRF token
made by one are good on the other, the login rate limit counts across both (Redis), the client's address and
request id come through nginx, the tick runs once per period across the workers, and a killed server is
routed around and restarted. Ctrl-C (SIGINT to the process group) stops every process.

Started once for the module, from the real CLI, on a database and instance of its own (tests/support/profile.py)."""

from __future__ import annotations

import json
import os
import re
import signal
import uuid

import pytest
import requests
import sqlalchemy as sa

from tests.support.profile import csrf as csrf_of
from tests.support.profile import own_database, prepare, profile_env, run_prod, wait_for

# Asks xdist to keep the module's tests on one worker (make test runs --dist loadgroup).
pytestmark = pytest.mark.xdist_group("g1_production_profile")


OWNER_EMAIL, OWNER_PASSWORD = "owner@g1.example", "production profile 2026"


# Started once per xdist worker that runs this module's tests (xdist was seen giving them to both workers, the
# group mark notwithstanding): each start costs ~10 s, and the servers are idle between the tests.
@pytest.fixture(scope="session")
def profile(tmp_path_factory):
    instance = tmp_path_factory.mktemp("g1-instance")
    with own_database() as url:
        env = profile_env(url, instance)
        prepare(env, OWNER_EMAIL, OWNER_PASSWORD, "G1 Coffee")
        with run_prod(env, instance, "--tick-every", "5") as running:
            running.database_url = url
            yield running


def test_g1_a_session_and_its_csrf_token_work_whichever_server_answers(profile):
    base, browser = profile.base, requests.Session()
    login_page = browser.get(f"{base}/login", timeout=30)
    signed_in = browser.post(f"{base}/login", data={"csrf_token": csrf_of(login_page.text), "email": OWNER_EMAIL,
                                                    "password": OWNER_PASSWORD}, allow_redirects=False, timeout=30)
    assert signed_in.status_code == 303, signed_in.text[:500]
    assert profile.served_by(login_page) != profile.served_by(signed_in)  # the token crossed servers
    pages = [browser.get(f"{base}/settings/account", allow_redirects=False, timeout=30) for _ in range(4)]
    assert [page.status_code for page in pages] == [200] * 4
    assert {profile.served_by(page) for page in pages} == {"web-1", "web-2"}
    # A form posted to the other server than the one that drew it: its CSRF token is good there too.
    settings = browser.get(f"{base}/settings/", timeout=30)
    out = browser.post(f"{base}/logout", data={"csrf_token": csrf_of(settings.text)}, allow_redirects=False, timeout=30)
    assert out.status_code in (302, 303)
    signed_out = browser.get(f"{base}/settings/account", allow_redirects=False, timeout=30)
    assert signed_out.status_code in (302, 303) and "/login" in signed_out.headers["Location"]


def test_g1_the_login_limit_counts_across_both_servers(profile):
    """10 failed logins per address and client in 15 minutes: spread over two servers counting alone, the 11th
    would pass (each saw 5 or 6); through Redis, it is refused."""
    base, stranger = profile.base, requests.Session()
    email = f"nobody-{uuid.uuid4().hex[:8]}@g1.example"
    answers, servers = [], set()
    token = csrf_of(stranger.get(f"{base}/login", timeout=30).text)
    for _ in range(11):  # nginx takes turns: the posts alternate between the two servers
        response = stranger.post(f"{base}/login", data={"csrf_token": token, "email": email, "password": "wrong"},
                                 allow_redirects=False, timeout=30)
        answers.append(response.status_code)
        servers.add(profile.served_by(response))
    assert answers == [401] * 10 + [429]
    assert servers == {"web-1", "web-2"}


def test_g1_the_client_address_and_request_id_come_through_nginx(profile):
    response = requests.get(f"{profile.base}/login", headers={"X-Forwarded-For": "198.51.100.7"}, timeout=30)
    request_id = response.headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)  # nginx's $request_id, which Kassa took and echoed
    line = next(json.loads(line) for log in profile.logs.glob("web-*.log")
                for line in log.read_text(errors="replace").splitlines() if request_id in line)
    assert line["request_id"] == request_id and line["path"] == "/login"


def test_g1_the_tick_runs_on_one_worker_per_period(profile):
    engine = sa.create_engine(profile.database_url)
    try:
        def claims():
            with engine.connect() as conn:
                return conn.execute(sa.text("SELECT period_start, claimed_by FROM periodic_claims "
                                            "WHERE name = 'tick'")).first()

        first = wait_for(claims, "a worker to take a tick period")
        later = wait_for(lambda: (row := claims()) and row[0] > first[0] and row, "the next tick period")
        assert later[0] > first[0]
        assert first[1] and later[1]  # each period taken by a worker that says who it is
    finally:
        engine.dispose()


def test_g1_a_killed_server_is_routed_around_and_restarted(profile):
    base, (first_port, _second) = profile.base, profile.server_ports
    pid = wait_for(lambda: profile.started_pid("web-1"), "web-1's pid")
    os.kill(pid, signal.SIGKILL)
    answers = [requests.get(f"{base}/login", timeout=30).status_code for _ in range(6)]
    assert answers == [200] * 6  # nginx sent them to web-2
    wait_for(lambda: requests.get(f"http://127.0.0.1:{first_port}/readyz", timeout=5).status_code == 200,
              "web-1 to be restarted", log_dir=profile.logs)
    assert "Kassa web-1 restarted" in profile.output.read_text(errors="replace")

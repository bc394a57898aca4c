"""G7: the tested nginx configuration with TLS. `run-prod --tls-cert --tls-key` serves HTTPS only, TLS 1.2 and
1.3, and Kassa behind it behaves as a production instance: HSTS, `__Host-` secure cookies, a login over TLS; and
with TLS but without the production secrets in the environment, the profile refuses to start (G8)."""

from __future__ import annotations

import subprocess

import pytest
import requests

from tests.support.profile import FLASK, ROOT, own_database, prepare, profile_env, run_prod
from tests.support.profile import csrf as csrf_of

pytestmark = pytest.mark.xdist_group("g7_tls_profile")

OWNER_EMAIL, OWNER_PASSWORD = "owner@g7.example", "production profile 2026"
SECRETS = {"KASSA_SECRET_KEY": "g7 " * 22, "KASSA_ENCRYPTION_KEYS": "n0HqeGG7C8yKGS-wZuPMM6yKKgW3Rt7y6L1v8Y1nQ0M="}


def _certificate(folder) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 (what a test can trust; a server has its CA's)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return str(cert), str(key)


# Started once per xdist worker that runs this module's tests (xdist was seen giving them to both workers, the
# group mark notwithstanding): each start costs ~10 s, and the servers are idle between the tests.
@pytest.fixture(scope="session")
def tls_profile(tmp_path_factory):
    folder = tmp_path_factory.mktemp("g7")
    cert, key = _certificate(folder)
    instance = folder / "instance"
    with own_database() as url:
        env = profile_env(url, instance, **SECRETS)
        prepare(env, OWNER_EMAIL, OWNER_PASSWORD, "G7 Coffee")
        with run_prod(env, instance, "--workers", "1", "--tls-cert", cert, "--tls-key", key, servers=1,
                      scheme="https", verify=cert) as running:
            yield running


def test_g7_the_profile_serves_https_as_a_production_instance(tls_profile):
    browser, verify = requests.Session(), tls_profile.verify  # per call: REQUESTS_CA_BUNDLE would win over .verify
    page = browser.get(f"{tls_profile.base}/login", timeout=30, verify=verify)
    assert page.status_code == 200
    assert "max-age=31536000" in page.headers["Strict-Transport-Security"]
    session_cookie = next(cookie for cookie in browser.cookies if cookie.name.startswith("__Host-"))
    assert session_cookie.secure and session_cookie.path == "/"
    form = {"csrf_token": csrf_of(page.text), "email": OWNER_EMAIL, "password": OWNER_PASSWORD}
    # Over HTTPS (nginx's X-Forwarded-Proto), a form post must come with a same-site Referer, as a browser sends
    # it (Flask-WTF's strict check): the same valid token and cookie without one is refused...
    refused = browser.post(f"{tls_profile.base}/login", data=form, allow_redirects=False, timeout=30, verify=verify)
    assert refused.status_code == 400
    signed_in = browser.post(f"{tls_profile.base}/login", data=form, allow_redirects=False, timeout=30,
                             verify=verify, headers={"Referer": f"{tls_profile.base}/login"})
    assert signed_in.status_code == 303, signed_in.text[:300]
    account = browser.get(f"{tls_profile.base}/settings/account", allow_redirects=False, timeout=30, verify=verify)
    assert account.status_code == 200


def _handshake(port: int, version: str) -> str:
    """What `openssl s_client` says on a handshake offering only `version` (ciphers opened up, so that the
    client does offer an old protocol and only the server can refuse it)."""
    done = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", f"-{version}", "-cipher",
                           "DEFAULT@SECLEVEL=0"], input="", capture_output=True, text=True, timeout=30)
    return done.stdout + done.stderr


def test_g7_only_tls_1_2_and_1_3_and_no_plain_http(tls_profile):
    port = int(tls_profile.base.rsplit(":", 1)[1])
    assert "alert protocol version" in _handshake(port, "tls1_1")  # refused by nginx
    assert "New, TLSv1.2, Cipher is ECDHE-" in _handshake(port, "tls1_2")  # forward secret
    assert "New, TLSv1.3, Cipher is TLS_" in _handshake(port, "tls1_3")
    plain = requests.get(f"http://127.0.0.1:{port}/login", timeout=30)
    assert plain.status_code == 400  # nginx: "The plain HTTP request was sent to HTTPS port"


def test_g7_with_tls_but_without_the_production_secrets_it_refuses_to_start(tmp_path):
    cert, key = _certificate(tmp_path)
    env = {"KASSA_INSTANCE_PATH": str(tmp_path / "instance"), "KASSA_REDIS_URL": "redis://127.0.0.1:6379/13",
           "KASSA_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/test", "PATH": "/usr/sbin:/usr/bin:/bin"}
    done = subprocess.run([*FLASK, "kassa", "run-prod", "--tls-cert", cert, "--tls-key", key], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "With TLS this is production: set KASSA_SECRET_KEY" in done.stderr
    assert "set KASSA_ENCRYPTION_KEYS" in done.stderr


def _verify(folder) -> subprocess.CompletedProcess:
    return subprocess.run(["systemd-analyze", "verify", "--man=no", "./kassa-web@8001.service",
                           "./kassa-worker@1.service", "./kassa.target"], cwd=folder, capture_output=True, text=True,
                          timeout=60)


def test_g7_the_systemd_units_written_for_this_checkout_verify_clean(tmp_path):
    units = tmp_path / "units"
    done = subprocess.run([*FLASK, "kassa", "systemd-units", str(units), "--user", "root"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert sorted(path.name for path in units.iterdir()) == ["kassa-web@.service", "kassa-worker@.service",
                                                             "kassa.target"]
    web = (units / "kassa-web@.service").read_text()
    assert f"ExecStart={ROOT}/.venv/bin/gunicorn " in web and "@ROOT@" not in web and "User=root" in web
    checked = _verify(units)
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, "")


def test_g7_systemd_verify_does_catch_a_unit_that_cannot_start(tmp_path):
    """The control for the test above: units for a checkout that isn't there fail verification."""
    from pathlib import Path

    from kassa.production import systemd_units

    for name, text in systemd_units(Path("/nonexistent"), "root").items():
        (tmp_path / name).write_text(text)
    checked = _verify(tmp_path)
    assert checked.returncode != 0 and "/nonexistent/.venv/bin/gunicorn is not executable" in checked.stderr


def test_g7_the_nginx_configuration_passes_nginx_t_with_and_without_tls(tmp_path):
    """`nginx -t` on the configuration the profile writes (the one docs/deploy.md gives), both ways."""
    from kassa.production import Profile, nginx_binary, prepare

    cert, key = _certificate(tmp_path)
    for name, profile in (("plain", Profile()), ("tls", Profile(tls_cert=cert, tls_key=key))):
        run_dir = tmp_path / name
        prepare(profile, run_dir)
        checked = subprocess.run([nginx_binary(), "-t", "-c", str(run_dir / "nginx.conf")], capture_output=True,
                                 text=True, timeout=60)
        assert checked.returncode == 0, checked.stderr
        assert "syntax is ok" in checked.stderr and "test is successful" in checked.stderr

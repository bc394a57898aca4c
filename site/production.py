"""G1: the production profile on one machine (`make run-prod`, `flask kassa run-prod`).

nginx in front of several gunicorn servers, and several workers, on PostgreSQL and Redis: the set-up a merchant
moves to when one process on SQLite is no longer enough, on loopback and without TLS, so that it can be started,
tried and tested anywhere. Each server and worker is a child process kept alive by a `WorkerSupervisor` (a
killed server or worker is restarted; a killed worker's outbox leases go back to the queue at once). What makes
the servers interchangeable is not here but in the configuration they share: one secret key (sessions and CSRF
tokens signed by one server are good on the other), Redis for the rate limits, PostgreSQL for everything else
(the card-testing guard counts in the database), and `KASSA_TRUSTED_PROXIES=1` so that each server sees the
buyer's address and nginx's request id. The nginx configuration is `site/deploy/nginx.conf` (docs/deploy.md).
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import make_url

from kassa.supervisor import WorkerSupervisor

DEPLOY = Path(__file__).resolve().parent / "deploy"
NGINX_TEMPLATE = DEPLOY / "nginx.conf"


@dataclass(frozen=True)
class Profile:
    port: int = 8080  # nginx, the one address buyers and merchants use
    servers: int = 2
    first_server_port: int = 8001  # the servers listen on this port and the ones after it
    server_processes: int = 2  # gunicorn worker processes per server
    workers: int = 2
    tick_every: float = 60.0
    tls_cert: str | None = None  # G7: with both, nginx speaks HTTPS only on `port`
    tls_key: str | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert else "http"

    @property
    def server_ports(self) -> list[int]:
        return [self.first_server_port + n for n in range(self.servers)]


def problems(app: Flask, profile: Profile) -> list[str]:
    """What stops the profile from starting, each as a sentence saying what to do."""
    found = []
    if bool(profile.tls_cert) != bool(profile.tls_key):
        found.append("TLS needs both --tls-cert and --tls-key.")
    for path in filter(None, (profile.tls_cert, profile.tls_key)):
        if not Path(path).is_file():
            found.append(f"{path} is not a file.")
    if profile.tls_cert:
        # Served over https, every server is a production instance (G8): it won't start on instance keys.
        found += [f"With TLS this is production: set {name} (docs/deploy.md, Secrets)."
                  for name in ("KASSA_SECRET_KEY", "KASSA_ENCRYPTION_KEYS") if not os.environ.get(name)]
    if make_url(app.config["SQLALCHEMY_DATABASE_URI"]).get_backend_name() != "postgresql":
        found.append("The production profile runs on PostgreSQL: set KASSA_DATABASE_URL=postgresql://… "
                     "(make run-prod does, to postgresql://postgres@127.0.0.1:5432/kassa).")
    if not app.config.get("KASSA_REDIS_URL"):
        found.append("The production profile shares rate limits through Redis: set KASSA_REDIS_URL=redis://… .")
    if not nginx_binary():
        found.append("nginx is not installed: apt-get install -y nginx (make run-prod installs it when run as root).")
    if shutil.which("gunicorn", path=str(Path(sys.executable).parent)) is None and shutil.which("gunicorn") is None:
        found.append("gunicorn is not installed in this virtualenv: pip install -e . .")
    return found


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((path for path in ("/usr/sbin/nginx",) if os.access(path, os.X_OK)), None)


def create_database(url: str) -> bool:
    """Create the PostgreSQL database `url` names when it does not exist yet. True when it was created."""
    target = make_url(url)
    if target.get_backend_name() != "postgresql":
        return False
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if conn.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}):
                return False
            conn.execute(sa.text(f'CREATE DATABASE "{target.database.replace(chr(34), "")}"'))
            return True
    finally:
        admin.dispose()


# G7: TLS as Mozilla's "intermediate" profile has it (TLS 1.2 and 1.3, their forward-secret AEAD ciphers).
TLS_LINES = """\
        ssl_certificate @CERT@;
        ssl_certificate_key @KEY@;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;
        ssl_prefer_server_ciphers off;
        ssl_session_cache shared:kassa_tls:10m;
        ssl_session_timeout 1d;
        ssl_session_tickets off;"""


def nginx_config(profile: Profile, run_dir: Path) -> str:
    upstreams = "\n".join(f"        server 127.0.0.1:{port} max_fails=1 fail_timeout=2s;"
                          for port in profile.server_ports)
    listen, tls = f"127.0.0.1:{profile.port}", "        # no TLS: loopback only (run-prod --tls-cert/--tls-key)"
    if profile.tls_cert:
        listen += " ssl"
        tls = TLS_LINES.replace("@CERT@", str(Path(profile.tls_cert).resolve())).replace(
            "@KEY@", str(Path(profile.tls_key or "").resolve()))
    return (NGINX_TEMPLATE.read_text(encoding="utf-8").replace("@RUN_DIR@", str(run_dir))
            .replace("@UPSTREAMS@", upstreams).replace("@LISTEN@", listen).replace("@TLS@", tls))


def child_environment(profile: Profile, run_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["KASSA_TRUSTED_PROXIES"] = "1"  # nginx, and nothing else, stands in front of the servers
    env.setdefault("KASSA_LOG_FORMAT", "json")
    env.setdefault("KASSA_BASE_URL", f"{profile.scheme}://127.0.0.1:{profile.port}")
    env["PROMETHEUS_MULTIPROC_DIR"] = str(run_dir / "metrics")
    return env


def commands(profile: Profile, run_dir: Path) -> list[tuple[str, list[str], bool]]:
    """(name, command, takes outbox leases) of every process the profile runs, servers first, nginx last."""
    gunicorn = [sys.executable, "-m", "gunicorn", "--workers", str(profile.server_processes),
                "--graceful-timeout", "10", "kassa:create_app()"]
    flask = [sys.executable, "-m", "flask", "--app", "kassa:create_app", "kassa"]
    # Each server its own control socket: gunicorn's default path is one per user, and the second would take
    # the first's.
    made = [(f"web-{n + 1}", [*gunicorn, "--bind", f"127.0.0.1:{port}",
                              "--control-socket", str(run_dir / f"web-{n + 1}.ctl")], False)
            for n, port in enumerate(profile.server_ports)]
    made += [(f"worker-{n + 1}", [*flask, "worker", "--tick-every", f"{profile.tick_every:g}"], True)
             for n in range(profile.workers)]
    made.append(("nginx", [nginx_binary() or "nginx", "-c", str(run_dir / "nginx.conf"), "-g", "daemon off;"],
                 False))
    return made


def prepare(profile: Profile, run_dir: Path) -> None:
    """The run folder: nginx's configuration and temp folders, an empty metrics folder, the log folder."""
    for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi", "logs"):
        (run_dir / name).mkdir(parents=True, exist_ok=True)
    metrics = run_dir / "metrics"
    shutil.rmtree(metrics, ignore_errors=True)  # prometheus_client's multiprocess files belong to one run
    metrics.mkdir()
    (run_dir / "nginx.conf").write_text(nginx_config(profile, run_dir), encoding="utf-8")


def run(app: Flask, profile: Profile, *, stop: threading.Event, say: Callable[[str], None]) -> None:
    """Start every process, keep them running until `stop` is set, then stop them (nginx first, so nothing new
    comes in while the servers finish what they have)."""
    run_dir = Path(app.instance_path) / "prod"
    prepare(profile, run_dir)
    env = child_environment(profile, run_dir)
    supervisors = []
    try:
        for name, command, takes_leases in commands(profile, run_dir):
            log = open(run_dir / "logs" / f"{name}.log", "ab")  # noqa: SIM115 - kept open for the child's life
            supervisor = WorkerSupervisor(app, command, env=env, say=say, name=f"Kassa {name}",
                                          release_leases=takes_leases, stdout=log, first_backoff=0.5)
            supervisor.start()
            supervisors.append((supervisor, log))
        say(f"Kassa (production profile) on {profile.scheme}://127.0.0.1:{profile.port}: nginx, {profile.servers} servers, "
            f"{profile.workers} workers. Logs in {run_dir / 'logs'}. Ctrl-C stops everything.")
        stop.wait()
    finally:
        for supervisor, log in reversed(supervisors):
            supervisor.stop()
            log.close()


def systemd_units(root: Path, user: str) -> dict[str, str]:
    """G7: the systemd units for a machine (site/deploy/systemd), for a checkout at `root` (with its .venv)
    run as `user`: {file name: text}."""
    return {unit.name: unit.read_text(encoding="utf-8").replace("@ROOT@", str(root)).replace("@USER@", user)
            for unit in sorted((DEPLOY / "systemd").iterdir()) if unit.suffix in (".service", ".target")}

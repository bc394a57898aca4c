"""`flask kassa serve` keeps its worker alive (H6); `flask kassa run-prod` (G1) keeps each of its processes alive.

The worker is a child process. When it dies (a crash, the OOM killer, `kill -9`), the supervisor says so,
hands what it had leased back to the outbox at once (its process is gone, so its leases are void) and starts
a new worker after a back-off: 1 s, doubling up to a minute, back to 1 s once a worker has stayed up a while.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Sequence

from flask import Flask

from kassa.extensions import db
from kassa.services.platform.outbox import release_dead_leases


class WorkerSupervisor:
    def __init__(self, app: Flask, command: Sequence[str], *, env: dict[str, str], say: Callable[[str], None],
                 first_backoff: float = 1.0, max_backoff: float = 60.0, healthy_after: float = 60.0,
                 name: str = "Kassa worker", release_leases: bool = True, stdout=None) -> None:
        """`name` says which process in the messages; `release_leases`: the child takes outbox leases (a worker,
        not a web server), so its leases go back to the queue when it dies; `stdout`: where its output goes."""
        self.app, self.command, self.env, self.say = app, list(command), env, say
        self.name, self.release_leases, self.stdout = name, release_leases, stdout
        self.first_backoff, self.max_backoff, self.healthy_after = first_backoff, max_backoff, healthy_after
        self.restarts = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._thread = threading.Thread(target=self._run, name="worker-supervisor", daemon=True)

    @property
    def pid(self) -> int | None:
        with self._lock:
            return self._process.pid if self._process else None

    def start(self) -> None:
        self._spawn()
        self._thread.start()

    def _spawn(self) -> bool:
        with self._lock:
            if self._stop.is_set():
                return False
            self._process = subprocess.Popen(self.command, env=self.env, stdout=self.stdout,  # noqa: S603 - our own
                                             stderr=subprocess.STDOUT if self.stdout else None)
            self.started_at = time.monotonic()
        self.say(f"{self.name} running (pid {self._process.pid}).")
        return True

    def _run(self) -> None:
        backoff = self.first_backoff
        while not self._stop.is_set():
            process = self._process
            if process is not None:
                while process.poll() is None:
                    if self._stop.wait(0.5):
                        return
                # On Ctrl-C the whole process group gets SIGINT: the worker stops along with us, not restarted.
                # The grace covers the server's own shutdown on a loaded machine.
                if self._stop.wait(2.0):
                    return
                if time.monotonic() - self.started_at >= self.healthy_after:
                    backoff = self.first_backoff
                held = ""
                if self.release_leases:
                    held = f"{self._release(process.pid)} message(s) it held are queued again; "
                self.say(f"{self.name} (pid {process.pid}) died (exit status {process.returncode}); "
                         f"{held}restarting it in {backoff:g} s.")
                with self._lock:
                    self._process = None
            if self._stop.wait(backoff):
                return
            backoff = min(backoff * 2, self.max_backoff)
            try:
                if self._spawn():
                    self.restarts += 1
                    self.say(f"{self.name} restarted (restart {self.restarts}).")
            except OSError as exc:  # the supervisor itself must not die: try again after the next back-off
                self.say(f"Could not start {self.name} ({exc}); trying again in {backoff:g} s.")

    def _release(self, pid: int) -> int:
        """Leases of the dead worker go back to the queue now (the new worker would also find them)."""
        try:
            with self.app.app_context():
                try:
                    return release_dead_leases()
                finally:
                    db.session.remove()
        except Exception as exc:  # the database may be down too; the new worker retries on its start
            self.say(f"Could not release the dead worker's leases yet ({type(exc).__name__}: {exc}).")
            return 0

    def stop(self, timeout: float = 10.0) -> None:
        with self._lock:
            self._stop.set()
            process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._thread.is_alive():
            self._thread.join(timeout)

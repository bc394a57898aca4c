"""A merchant's webhook endpoint on 127.0.0.1 (I6): records every POST and answers with the statuses it is
told to, in order (the last one repeats). Used by tests and the webhook benchmark."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: str
    at: float


@dataclass
class Receiver:
    statuses: list[int] = field(default_factory=lambda: [200])
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None
    # `hold`: each request waits (at most `hold_timeout` s) until that many are in flight at once, then all
    # answer; `max_in_flight` is the most seen at once (how many POSTs a sender makes concurrently).
    hold: int = 0
    delay: float = 0.0  # seconds each answer takes (benchmarks: a receiver as far away as a real one)
    hold_timeout: float = 5.0
    in_flight: int = 0
    max_in_flight: int = 0
    released: bool = False
    arrived: threading.Condition = field(default_factory=threading.Condition)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/kassa/webhooks"

    def answer(self) -> int:
        with self.lock:
            return self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # As production servers do (nginx, gunicorn): without it, on a kept-alive connection the body's small
            # write waits for the ACK of the headers' write, which the client delays by 40 ms (Nagle).
            disable_nagle_algorithm = True

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                with receiver.arrived:
                    receiver.in_flight += 1
                    receiver.max_in_flight = max(receiver.max_in_flight, receiver.in_flight)
                    receiver.arrived.notify_all()
                    if receiver.hold:
                        receiver.arrived.wait_for(lambda: receiver.in_flight >= receiver.hold or receiver.released,
                                                  receiver.hold_timeout)
                        receiver.released = True  # this group goes; the next waits for a group of its own
                    receiver.in_flight -= 1
                    if receiver.in_flight == 0:
                        receiver.released = False
                if receiver.delay:
                    time.sleep(receiver.delay)
                with receiver.lock:
                    receiver.requests.append(Received(self.path, dict(self.headers), body, time.time()))
                status = receiver.answer()
                reply = b'{"received": true}' if status < 400 else b"Internal error in the shop"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

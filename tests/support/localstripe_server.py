"""Test-only entry point for localstripe (K13): `python -m tests.support.localstripe_server`.

localstripe's own `start()` listens on every interface (``::``) and pickles its whole store to
/tmp/localstripe.pickle on every write (shared by every run on the machine). This wrapper binds a free port on
127.0.0.1 only, keeps the store in memory, and prints the port as its first line so the fixture knows where
to poll. localstripe is GPL and a dev extra: nothing under site/ imports it."""

from __future__ import annotations

import socket

from aiohttp import web
from localstripe import resources, server


def main() -> None:
    # Persistence off: the store lives and dies with this process.
    resources.Store.dump_to_disk = lambda self: None
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    web.run_app(server.app, sock=sock, print=None, access_log=None)


if __name__ == "__main__":
    main()

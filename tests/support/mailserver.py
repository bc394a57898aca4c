"""A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps every message it receives."""

from __future__ import annotations

import contextlib
import email
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Mailbox:
    messages: list[Message] = field(default_factory=list)
    # When set, the server answers the next N messages with this SMTP error (to test retries).
    refuse_next: int = 0
    refuse_with: str = "451 4.3.0 Mail server temporarily unavailable"

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if address in (m.get("To") or "")]

    @staticmethod
    def text_of(message: Message) -> str:
        for part in message.walk():
            if part.get_content_type() == "text/plain":
                return part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
        return ""

    @staticmethod
    def attachments_of(message: Message) -> list[tuple[str, bytes]]:
        return [
            (part.get_filename(), part.get_payload(decode=True))
            for part in message.walk()
            if part.get_filename()
        ]


class _Handler:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def handle_DATA(self, server, session, envelope):
        if self.box.refuse_next > 0:
            self.box.refuse_next -= 1
            return self.box.refuse_with
        self.box.messages.append(email.message_from_bytes(envelope.original_content or envelope.content))
        return "250 OK"


@contextlib.contextmanager
def smtp_controller() -> Iterator[tuple[int, Mailbox]]:
    """A running server on 127.0.0.1: (its port, its mailbox)."""
    from aiosmtpd.controller import Controller

    box = Mailbox()
    port = _free_port()
    controller = Controller(_Handler(box), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, box
    finally:
        controller.stop()


@pytest.fixture
def smtp_server():
    """Yields (host, port, mailbox). Use together with the `smtp_app_config` fixture."""
    with smtp_controller() as (port, box):
        yield "127.0.0.1", port, box


@pytest.fixture
def mailbox(smtp_server):
    return smtp_server[2]


@pytest.fixture
def smtp_app_config(smtp_server) -> dict:
    host, port, _box = smtp_server
    return {"MAIL_SERVER": host, "MAIL_PORT": port, "MAIL_USE_TLS": False, "MAIL_USE_SSL": False}

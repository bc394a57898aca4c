"""The fixtures every I6 test module uses: the loopback receiver allowed, a local receiver, a signed-in merchant.

Imported with `from tests.support.webhook_fixtures import *` so pytest finds them in each module."""

from __future__ import annotations

import pytest

from tests.factories import make_merchant
from tests.support.payments import login
from tests.support.webhook_receiver import Receiver

__all__ = ["app_config", "owner", "receiver"]


@pytest.fixture
def app_config():
    return {"KASSA_WEBHOOK_ALLOW_LOOPBACK": True}


@pytest.fixture
def receiver():
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def owner(client):
    user = make_merchant(company="Hook Shop")
    login(client, user)
    return user

"""Fixtures the unit tests share."""

from __future__ import annotations

import pytest

from kassa.processors.sandbox import InMemorySandboxStore


@pytest.fixture
def store():
    """A fresh in-memory sandbox store (what the app keeps in its database)."""
    return InMemorySandboxStore()

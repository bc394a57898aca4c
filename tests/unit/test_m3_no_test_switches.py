"""M3: production code has no test switches; faults are injected by a wrapper processor used only in tests
(tests/support/faults.py). M2: the Processor Protocol holds what services need from any money mover, so
sandbox-only controls live on `SandboxProcessor`, never on the Protocol."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from kassa.processors.base import Processor
from kassa.processors.sandbox import SandboxProcessor

SITE = Path(__file__).resolve().parents[2] / "site"

# Names of the switches this change removed, and the shapes a new one would take.
FORBIDDEN = {
    "KASSA_REFUND_GUARD": r"KASSA_REFUND_GUARD",
    "inject_fault": r"inject_fault",
    "fault hooks read on every call": r"_take_fault|_after_success|[\"']faults[\"']",
    "fail_next_payout": r"fail_next_payout|_take_failure",
    "a test hook": r"_test_hook|test_hook",
    "a TESTING check": r"config(?:\.get\()?\[?[\"']TESTING[\"']",
    "a racy path kept for a test": r"_reserve_unguarded|stale_read",
}

# What only a test or the sandbox's own test-mode UI may set: never part of what every processor must do.
# (`save_card` and `charge_many` are not: services call them, so M2 made them Protocol methods.)
SANDBOX_ONLY = {"set_payment_method_behaviour", "inject_fault"}


def _production_sources() -> dict[str, str]:
    return {str(path.relative_to(SITE)): path.read_text(encoding="utf-8") for path in sorted(SITE.rglob("*.py"))
            if "migrations" not in path.parts}


def test_m3_production_code_has_none_of_the_removed_test_switches():
    """No file under site/ mentions the refund-guard switch, sandbox fault injection, the payout failure
    hook, test hooks or TESTING checks: tests install faults from tests/support/faults.py instead."""
    sources = _production_sources()
    assert len(sources) > 50  # the scan really read the package
    found = [f"{name}: {path}" for path, text in sources.items() for name, pattern in FORBIDDEN.items()
             if re.search(pattern, text)]
    assert not found, found


def test_m2_m3_every_protocol_method_is_implemented_by_the_sandbox_and_none_is_a_sandbox_control():
    """The sandbox implements the whole Protocol (same parameters), and the Protocol has no sandbox-only
    control such as making a saved test card decline (that stays on SandboxProcessor)."""
    methods = {name for name, member in vars(Processor).items()
               if inspect.isfunction(member) and not name.startswith("_")}
    assert {"charge", "lookup_charge", "refund", "due_events", "acknowledge_event"} <= methods
    assert not methods & SANDBOX_ONLY, methods & SANDBOX_ONLY
    for name in methods:
        wanted = list(inspect.signature(getattr(Processor, name)).parameters)
        assert list(inspect.signature(getattr(SandboxProcessor, name)).parameters) == wanted, name
    assert hasattr(SandboxProcessor, "set_payment_method_behaviour")  # the T5 control is still there
    assert not hasattr(SandboxProcessor, "inject_fault")
    for name, member in vars(Processor).items():
        if inspect.isfunction(member):
            assert "sandbox only" not in (member.__doc__ or "").lower(), name

"""M2: the Processor Protocol is exactly what the app calls on processors, the sandbox implements all of it,
and the test-only fault wrapper (M3) passes every part of it through.

The calls are read from the source (ast), so a service that starts calling something new on a processor, or a
Protocol method nothing calls any more, fails here until the Protocol says so."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from kassa.processors.base import Processor
from kassa.processors.sandbox import InMemorySandboxStore, SandboxProcessor
from tests.support.faults import MONEY_CALLS, FaultPlan, FaultyProcessor

SITE = Path(__file__).resolve().parents[2] / "site"
# Where processors are used: every service and view, and the registry that hands them out.
CALLERS = [*sorted((SITE / "services").rglob("*.py")), *sorted((SITE / "blueprints").rglob("*.py")),
           SITE / "processors" / "registry.py"]
# Functions that hand out a processor. `sandbox()` is how services reach what only the sandbox has (below).
SOURCES = {"processor_for", "live_processor", "sandbox"}
# The sandbox's own test-mode controls: called on `sandbox()` only, never part of the Protocol.
SANDBOX_CONTROLS = {"set_payment_method_behaviour", "payment_method_behaviour"}  # B9: the switch reads it back
# Protocol methods that move no money: the fault wrapper passes them through untouched.
NOT_MONEY = {"lookup_charge", "finish_charge", "lookup_refund", "lookup_dispute", "lookup_payout", "can_settle", "save_card",
             "finish_save_card",
             "due_events", "acknowledge_event"}


def protocol_members() -> set[str]:
    methods = {name for name, member in vars(Processor).items()
               if inspect.isfunction(member) and not name.startswith("_")}
    return methods | set(Processor.__annotations__)


def _source_of(node: ast.AST) -> str | None:
    """"sandbox" or "processor" when `node` is a call that hands out a processor."""
    if isinstance(node, ast.Call):
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
        if name in SOURCES:
            return "sandbox" if name == "sandbox" else "processor"
    return None


def used_on_processors(path: Path) -> dict[str, set[str]]:
    """{"processor": names used on processors from processor_for/live_processor or a `processor` parameter,
    "sandbox": names used on `sandbox()`} in one module: attribute reads and method calls alike."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and (source := _source_of(node.value)):
            bound.update((target.id, source) for target in node.targets if isinstance(target, ast.Name))
        elif isinstance(node, ast.arg) and node.arg == "processor":
            bound.setdefault("processor", "processor")
    used: dict[str, set[str]] = {"processor": set(), "sandbox": set()}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        source = _source_of(node.value) or (bound.get(node.value.id) if isinstance(node.value, ast.Name) else None)
        if source:
            used[source].add(node.attr)
    return used


def app_usage() -> dict[str, set[str]]:
    usage: dict[str, set[str]] = {"processor": set(), "sandbox": set()}
    for path in CALLERS:
        for source, names in used_on_processors(path).items():
            usage[source] |= names
    return usage


def test_m2_the_protocol_is_exactly_what_the_app_uses_on_processors():
    """Every method and attribute the services, views and registry use on a processor is in the Protocol, and
    every Protocol member is used: nothing probed with hasattr, nothing declared for one processor only."""
    usage = app_usage()
    assert {"charge", "charge_many", "save_card", "send_payout", "name"} <= usage["processor"]  # the scan works
    used = usage["processor"] | (usage["sandbox"] - SANDBOX_CONTROLS)
    assert used == protocol_members(), (
        f"used but not in the Protocol: {sorted(used - protocol_members())}; "
        f"in the Protocol but unused: {sorted(protocol_members() - used)}")


def test_m2_sandbox_controls_are_reached_through_sandbox_only_and_are_not_in_the_protocol():
    """T5's saved-card behaviour is a sandbox control: services call it on `sandbox()` (test mode by nature),
    the sandbox has it, the Protocol doesn't."""
    usage = app_usage()
    assert usage["sandbox"] & SANDBOX_CONTROLS == SANDBOX_CONTROLS
    assert not usage["processor"] & SANDBOX_CONTROLS
    assert not protocol_members() & SANDBOX_CONTROLS
    assert all(callable(getattr(SandboxProcessor, name)) for name in SANDBOX_CONTROLS)


def test_m2_the_sandbox_implements_every_protocol_member_with_the_same_parameters():
    for name in protocol_members():
        assert hasattr(SandboxProcessor, name), name
        member = getattr(Processor, name, None)
        if inspect.isfunction(member):
            wanted = list(inspect.signature(member).parameters)
            assert list(inspect.signature(getattr(SandboxProcessor, name)).parameters) == wanted, name


def test_m2_m3_the_fault_wrapper_crashes_around_every_money_call_and_passes_the_rest():
    """FaultyProcessor (tests/support/faults.py) puts its crash points around exactly the Protocol methods
    that move money, and hands every other Protocol member through as the processor's own."""
    methods = protocol_members() - set(Processor.__annotations__)
    assert set(MONEY_CALLS) == methods - NOT_MONEY
    sandbox = SandboxProcessor(InMemorySandboxStore(), lambda account_id: "US")
    wrapper = FaultyProcessor(sandbox, FaultPlan())
    assert wrapper.name == sandbox.name
    for name in methods:
        passed = getattr(wrapper, name)
        if name in MONEY_CALLS:
            assert passed.__name__ == "call", name  # the wrapper's crash points
        else:
            assert passed == getattr(sandbox, name), name

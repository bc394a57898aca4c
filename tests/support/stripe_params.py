"""Every request Kassa sends to Stripe checked against Stripe's own API description (K13).

Stripe publishes its OpenAPI description; the pinned `stripe` package is generated from it: each service method
names its path (``self._request("post", "/v1/payment_intents/{intent}/confirm", …)``) and its parameters as a
TypedDict (``PaymentIntentConfirmParams``, ``# File generated from our OpenAPI spec``), with every parameter's
type and every enum's allowed values. This module reads both from the installed package — no copy of the spec to
keep up to date, and always the API version the SDK pins — and checks a form-encoded request the way Stripe's
own API would before acting on it: the endpoint exists for that method, every parameter name exists (nested
``a[b][0][c]`` too), enums hold an allowed value, integers and booleans parse.

localstripe and the fixture transport accept whatever they are sent (localstripe rejects a few real parameters
and accepts made-up ones); this is what catches a misspelt or misplaced parameter before a real Stripe would.
Test-only: site/ never imports it.
"""

from __future__ import annotations

import ast
import functools
import importlib
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NotRequired, Union

import stripe
import stripe.params
from typing_extensions import is_typeddict

_SDK = Path(stripe.__file__).parent
_KEY_PART = re.compile(r"\[([^\]]*)\]")
_REQUEST_OPTIONS = frozenset(importlib.import_module("stripe._request_options").RequestOptions.__annotations__)


class StripeRequestInvalid(AssertionError):
    """A request the real Stripe API would refuse: unknown endpoint or parameter, or a value of the wrong type."""


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    template: str
    params: str | None  # the TypedDict's name in stripe.params ("checkout.…" in a sub-namespace), None: no parameters


def _annotation_name(node: ast.expr | None) -> str | None:
    """'PaymentIntentCreateParams' out of "PaymentIntentCreateParams" or Optional["PaymentIntentCreateParams"]."""
    if node is None:
        return None
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str) and sub.value.endswith("Params"):
            return sub.value
    return None


def _request_call(fn: ast.FunctionDef) -> tuple[str, str] | None:
    """(method, path template) of the ``self._request(...)`` the service method makes."""
    for node in ast.walk(fn):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr in ("_request", "_request_stream") and len(node.args) >= 2:
            method, path = node.args[0], node.args[1]
            if isinstance(path, ast.Call) and isinstance(path.func, ast.Attribute):  # "…/{id}".format(...)
                path = path.func.value
            if isinstance(method, ast.Constant) and isinstance(path, ast.Constant):
                return method.value.upper(), path.value
    return None


@functools.cache
def routes() -> tuple[Route, ...]:
    """Every endpoint the SDK's v1 services call, with its parameters' TypedDict."""
    found: dict[tuple[str, str], Route] = {}
    # The top-level services and those of Stripe's v1 sub-namespaces (stripe.checkout, …): v2 is another API.
    sources = [*sorted(_SDK.glob("_*_service.py")),
               *sorted(path for path in _SDK.glob("*/_*_service.py") if path.parent.name not in ("v2", "params"))]
    for source in sources:
        tree = ast.parse(source.read_text())
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef):
                continue
            call = _request_call(fn)
            if call is None:
                continue
            method, template = call
            params = next((_annotation_name(arg.annotation) for arg in fn.args.args if arg.arg == "params"), None)
            if params is not None and source.parent != _SDK:  # "checkout.SessionCreateParams": its namespace's
                params = f"{source.parent.name}.{params}"
            regex = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
            found.setdefault((method, template), Route(method, re.compile(regex), template, params))
    return tuple(found.values())


def route_for(method: str, path: str) -> Route:
    matches = [route for route in routes() if route.method == method.upper() and route.pattern.fullmatch(path)]
    if not matches:
        raise StripeRequestInvalid(f"Stripe has no endpoint {method.upper()} {path}")
    # /v1/payment_intents/search before /v1/payment_intents/{intent}: the fewest placeholders wins.
    return min(matches, key=lambda route: route.template.count("{"))


@functools.cache
def _hints(name: str) -> dict[str, Any]:
    namespace, _, base = name.rpartition(".")
    if namespace:  # a sub-namespace's (stripe.params.checkout.SessionCreateParams): names repeat across them
        return _class_hints(getattr(importlib.import_module(f"stripe.params.{namespace}"), base))
    cls = getattr(stripe.params, name, None)
    if cls is None:  # nested TypedDicts live in the module of the top-level one
        for module_name in _modules():
            cls = getattr(importlib.import_module(module_name), name, None)
            if cls is not None:
                break
    if cls is None:
        raise StripeRequestInvalid(f"the SDK has no parameters type {name}")
    return _class_hints(cls)


def _class_hints(cls: type) -> dict[str, Any]:
    """The parameters a TypedDict declares, forward references resolved in its own module."""
    module = importlib.import_module(cls.__module__)
    hints = typing.get_type_hints(cls, globalns={**vars(typing), **vars(module)}, localns={"StripeContext": object})
    # Only parameters: the RequestOptions base holds client options (api_key, stripe_account, …), which the SDK
    # sends as headers, never in a body.
    return {key: value for key, value in hints.items() if key not in _REQUEST_OPTIONS}


@functools.cache
def _modules() -> tuple[str, ...]:
    return tuple(f"stripe.params.{path.stem}" for path in sorted((_SDK / "params").glob("_*_params.py")))


def _options(tp: Any) -> list[Any]:
    """The alternatives a type allows, NotRequired/Optional/Union unwrapped."""
    origin = typing.get_origin(tp)
    if origin is NotRequired:
        return _options(typing.get_args(tp)[0])
    if origin in (Union, types.UnionType):
        return [alt for arg in typing.get_args(tp) for alt in _options(arg)]
    return [tp]


def _accepts(tp: Any, parts: list[str], value: str) -> bool:
    """Whether a parameter of type ``tp`` accepts ``value`` at the nested key ``parts``."""
    options = _options(tp)
    if any(typing.get_origin(option) is Literal and typing.get_args(option) != ("",) for option in options):
        # The SDK widens enums to `Literal[…] | str` so that new values don't break old clients; the API itself
        # takes only the enum's values (or "" to clear an emptyable one). `Literal[''] | str` is free text that
        # may be cleared, and stays free text.
        options = [option for option in options if option is not str]
        if value == "":
            return True
    if parts:
        return any(_accepts_inside(option, parts, value) for option in options)
    return any(_accepts_value(option, value) for option in options)


def _accepts_inside(option: Any, parts: list[str], value: str) -> bool:
    """``option[parts[0]]…`` = value: a field of an object, an item of a list, or a key of a flat map."""
    origin = typing.get_origin(option)
    if is_typeddict(option):
        hints = _class_hints(option)
        return parts[0] in hints and _accepts(hints[parts[0]], parts[1:], value)
    if origin is list:
        return parts[0].isdigit() and _accepts(typing.get_args(option)[0], parts[1:], value)
    if origin is dict:  # metadata[key]=value: one level only
        return len(parts) == 1 and _accepts(typing.get_args(option)[1], [], value)
    return False


_SCALARS: dict[Any, re.Pattern[str]] = {bool: re.compile("true|false"), int: re.compile(r"-?\d+"),
                                        float: re.compile(r"-?\d+(\.\d+)?")}


def _accepts_value(option: Any, value: str) -> bool:
    origin = typing.get_origin(option)
    if option in (Any, str, object):
        return True
    if origin is Literal:
        return value in {str(arg).lower() if isinstance(arg, bool) else str(arg) for arg in typing.get_args(option)}
    if option in _SCALARS:
        return bool(_SCALARS[option].fullmatch(value))
    # An object or a map sent as "" is Stripe's way of clearing it.
    return (origin is dict or is_typeddict(option)) and value == ""


def check_request(method: str, path: str, params: list[tuple[str, str]]) -> Route:
    """Raise StripeRequestInvalid unless Stripe's API, as the pinned SDK describes it, takes this request."""
    route = route_for(method, path)
    if not params:
        return route
    if route.params is None:
        raise StripeRequestInvalid(f"{method.upper()} {path} takes no parameters, got {[k for k, _ in params]}")
    hints = _hints(route.params)
    for key, value in params:
        head, _, rest = key.partition("[")
        parts = _KEY_PART.findall("[" + rest) if rest else []
        if head not in hints:
            raise StripeRequestInvalid(f"{method.upper()} {route.template}: Stripe has no parameter {head!r} "
                                       f"({route.params})")
        if not _accepts(hints[head], parts, value):
            raise StripeRequestInvalid(f"{method.upper()} {route.template}: {key}={value!r} is not what Stripe "
                                       f"accepts there ({route.params})")
    return route

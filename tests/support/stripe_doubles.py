"""Stripe test doubles for the contract suite (K13): clients on localstripe, one `StripeProcessor` per Kassa
account, and a recording fixture transport for what localstripe lacks or gets wrong.

Test-only: site/ never imports this, nor localstripe (GPL, a dev extra)."""

from __future__ import annotations

import email.policy
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.parser import BytesParser
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import stripe

from kassa.processors.base import ChargeRequest
from kassa.processors.stripe import StripeProcessor
from tests.support.stripe_params import check_request

# localstripe's test cards (STRIPE_NOTE.md): 4242… succeeds, 4000000000000341 declines on a PaymentIntent
# (4000000000000002, Stripe's generic decline, succeeds there).
LOCALSTRIPE_DECLINES = "4000000000000341"


def client_for(base_url: str, http_client: stripe.HTTPClient | None = None) -> stripe.StripeClient:
    """A StripeClient whose every host (api and files too) is ``base_url``: nothing leaves the machine. Every
    request it sends is first checked against Stripe's API description (tests/support/stripe_params.py)."""
    return stripe.StripeClient("sk_test_kassa", base_addresses={"api": base_url, "files": base_url,
                                                                "connect": base_url},
                               http_client=http_client or CheckedRequestsClient(), max_network_retries=0)


def _sent(method: str, url: str, headers: Any, post_data: Any) -> Sent:
    """A request as the SDK sent it: form-encoded (query or body) or a multipart upload (the File API)."""
    parts = urlsplit(url)
    headers = dict(headers or {})
    if headers.get("Content-Type", "").startswith("multipart/form-data"):
        uploaded = multipart_parts(headers["Content-Type"], post_data)
        fields = [(name, data.decode()) for name, filename, data in uploaded if filename is None]
        return Sent(method.upper(), parts.path, headers, fields, uploaded, parts.netloc)
    body = post_data.decode() if isinstance(post_data, bytes) else post_data or parts.query
    return Sent(method.upper(), parts.path, headers, parse_qsl(body or "", keep_blank_values=True),
                host=parts.netloc)


class CheckedRequestsClient(stripe.RequestsClient):
    """The SDK's own transport (to localstripe), refusing first what the real Stripe API would refuse: localstripe
    takes made-up parameters and rejects some real ones, so it alone can't say a request is right (K13)."""

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        sent = _sent(method, url, headers, post_data)
        check_request(method, sent.path, sent.checked_params)
        return super().request(method, url, headers, post_data)


class StripeAccounts:
    """The Protocol over one `StripeProcessor` per Kassa account (each merchant has its own Stripe account and
    client), so the contract's two accounts each talk to their own."""

    name = "stripe"

    def __init__(self, processors: dict[int, StripeProcessor]):
        self.processors = processors

    def _of(self, account_id: int) -> StripeProcessor:
        return self.processors[account_id]

    def charge(self, req: ChargeRequest):
        return self._of(req.account_id).charge(req)

    def charge_many(self, requests: Sequence[ChargeRequest]):
        return self._of(requests[0].account_id).charge_many(requests) if requests else []

    def can_settle(self, currency: str, settlement_currency: str) -> bool:
        return all(p.can_settle(currency, settlement_currency) for p in self.processors.values())

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def call(account_id: int, *args: Any, **kwargs: Any) -> Any:
            return getattr(self._of(account_id), name)(account_id, *args, **kwargs)
        return call


def localstripe_payment(client: stripe.StripeClient) -> Callable[[str], dict[str, Any]]:
    """What the contract's test card numbers become on localstripe: the PaymentMethod Stripe.js would have
    made from them in the buyer's browser (Kassa itself only ever sees the id), for a charge or, with
    ``setup=True``, for `save_card` (the Payment Element in setup mode)."""
    def payment(number: str, *, setup: bool = False) -> dict[str, Any]:
        if number == "4242424242424242":
            return {"payment_method_token": "pm_card_visa"}
        if number == "4000000000000002" and not setup:  # localstripe declines 0002 only when saving it
            number = LOCALSTRIPE_DECLINES
        method = client.v1.payment_methods.create(params={
            "type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"}})
        return {"payment_method_token": method.id}
    return payment


@dataclass
class Sent:
    method: str
    path: str
    headers: dict[str, str]
    params: list[tuple[str, str]]
    # A multipart upload (the File API): each part's name, filename (None for a plain field) and bytes.
    parts: list[tuple[str, str | None, bytes]] = field(default_factory=list)
    host: str = ""

    @property
    def checked_params(self) -> list[tuple[str, str]]:
        """What the API description checks: the form fields, and each uploaded file by its part's name."""
        return self.params + [(name, filename) for name, filename, _data in self.parts if filename is not None]


def multipart_parts(content_type: str, body: bytes) -> list[tuple[str, str | None, bytes]]:
    """The parts of a multipart/form-data body, as the server reads them (the stdlib's MIME parser)."""
    message = BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    return [(part.get_param("name", header="content-disposition"), part.get_filename(),
             part.get_payload(decode=True)) for part in message.iter_parts()]


class FixtureTransport(stripe.HTTPClient):
    """An HTTP transport for `StripeClient` that answers from Stripe-shaped JSON and records each request.

    ``answers`` maps (method, path) to a list of (status, body) answered in turn (the last one repeats)."""

    name = "fixture"

    def __init__(self, answers: dict[tuple[str, str], list[tuple[int, dict[str, Any]]]]):
        super().__init__()
        self.answers = answers
        self.sent: list[Sent] = []

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        sent = _sent(method, url, headers, post_data)
        check_request(method, sent.path, sent.checked_params)  # what Stripe would refuse fails the test (K13)
        self.sent.append(sent)
        queue = self.answers.get((method.upper(), sent.path))
        if not queue:
            return json.dumps({"error": {"type": "invalid_request_error", "message": "No such fixture",
                                         "code": "resource_missing"}}), 404, {}
        status, answer = queue.pop(0) if len(queue) > 1 else queue[0]
        return json.dumps(answer), status, {"request-id": "req_fixture"}

    def request_stream(self, method, url, headers, post_data=None, *, _usage=None):
        body, status, headers = self.request(method, url, headers, post_data)
        return body, status, headers

    def close(self) -> None:
        pass

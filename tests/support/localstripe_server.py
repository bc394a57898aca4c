"""Test-only entry point for localstripe (K13): `python -m tests.support.localstripe_server`.

localstripe's own `start()` listens on every interface (``::``) and pickles its whole store to
/tmp/localstripe.pickle on every write (shared by every run on the machine). This wrapper binds a free port on
127.0.0.1 only, keeps the store in memory, and prints the port as its first line so the fixture knows where
to poll. localstripe is GPL and a dev extra: nothing under site/ imports it.

One gap is filled the way Stripe behaves (K8): a PaymentIntent's ``setup_future_usage``, which localstripe
refuses (400 "Unexpected"). Stripe attaches the intent's PaymentMethod to its customer once the payment
succeeds, so the method can be charged later off-session; the wrapper does exactly that and nothing more."""

from __future__ import annotations

import socket

from aiohttp import web
from localstripe import resources, server

# The Stripe.js stand-in (tests/browser/fixtures/stripe-standin.js) creates PaymentMethods from the buyer's browser
# with the publishable key, as Stripe.js does on Stripe; localstripe takes only a secret key there. A browser's
# request (it has an Origin) to that one endpoint is let through, as Stripe would let it through.
_browser_creates = ("/v1/payment_methods",)


def _accepting_browser_creates(get_api_key):
    def patched(request):
        key = get_api_key(request)
        if key is None and request.method == "POST" and request.path in _browser_creates \
                and request.headers.get("Origin"):
            return "sk_test_from_the_browser"
        return key
    return patched


def _ignoring(cls, names: tuple[str, ...]) -> None:
    """Stripe takes these parameters on this call; localstripe refuses them ("Unexpected …") though they change
    nothing it simulates (a return address for bank redirects, which it never makes)."""
    create = cls._api_create.__func__

    def patched(klass, **data):
        for name in names:
            data.pop(name, None)
        return create(klass, **data)

    cls._api_create = classmethod(patched)


def _accept_setup_future_usage() -> None:
    create = resources.PaymentIntent._api_create.__func__

    def _api_create(cls, setup_future_usage=None, **data):
        if setup_future_usage not in (None, "off_session", "on_session"):
            raise resources.UserError(400, "Bad request")
        intent = create(cls, **data)  # a decline raises here (402), and then nothing is kept, as on Stripe
        intent.setup_future_usage = setup_future_usage
        if setup_future_usage and intent.customer and intent.status == "succeeded":
            resources.PaymentMethod._api_retrieve(intent.payment_method).customer = intent.customer
        return intent

    resources.PaymentIntent._api_create = classmethod(_api_create)


def main() -> None:
    _accept_setup_future_usage()
    # Persistence off: the store lives and dies with this process.
    resources.Store.dump_to_disk = lambda self: None
    server.get_api_key = _accepting_browser_creates(server.get_api_key)
    _ignoring(resources.PaymentIntent, ("return_url",))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    web.run_app(server.app, sock=sock, print=None, access_log=None)


if __name__ == "__main__":
    main()

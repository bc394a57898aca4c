"""The buyer's checkout (C1–C7): public, phone-first, works without JavaScript.

Buyer-facing: this module never imports merchant views (DESIGN §7.2).
"""

from __future__ import annotations

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from werkzeug.datastructures import LanguageAccept

from kassa import buyer_proof
from kassa.blueprints.checkout_forms import CheckoutForm, TestAuthenticationForm
from kassa.errors import (
    Conflict,
    Gone,
    KassaError,
    NotFound,
    PaymentDeclined,
    TooManyRequests,
    ValidationFailed,
)
from kassa.extensions import db, limiter
from kassa.i18n import LANGUAGES, best_language, show_times_in
from kassa.models import CheckoutSession, CheckoutStatus, Mode, Payment, PaymentLink, PaymentStatus
from kassa.netutil import client_ip
from kassa.page_cache import CHECKOUT_SLOTS, PageCache, compact
from kassa.rendering import private_download
from kassa.security import allow_form_action, allow_stripe_js, csp_nonce, generate_csrf
from kassa.services.checkout import checkout as checkout_service
from kassa.services.links import promo_codes
from kassa.services.links.links import sign_test_link
from kassa.services.links.snapshots import offered_methods, snapshot_summary, snapshot_tax
from kassa.services.payments import receipts
from kassa.services.payments.mandates import mandate_text
from kassa.services.payments.receipts import public_receipt_pdf
from kassa.urls import absolute_url, web_origin

bp = Blueprint("checkout", __name__)


def _buyer_language(stored: str | None = None, posted: str | None = None) -> str:
    """C7: the language the buyer chose on the page (`?lang=`, or `posted` from the form), else the checkout
    session's `stored` language, else what their browser prefers."""
    chosen = request.args.get("lang") or posted
    if chosen in LANGUAGES:
        session["buyer_lang"] = chosen
        return chosen
    # The browser's own latest choice first: a GET no longer saves it on the checkout session (H14).
    remembered = session.get("buyer_lang")
    if remembered in LANGUAGES:
        return remembered
    return default_language(stored, request.accept_languages)


def default_language(stored: str | None, accept_languages: LanguageAccept) -> str:
    """C7, when the buyer chose nothing on the page (a first visit, blueprints/checkout_first_visit.py): the
    checkout session's `stored` language, else what their browser prefers."""
    if stored in LANGUAGES:
        return stored
    return best_language(accept_languages.best_match(list(LANGUAGES)))


def _use_language(language: str) -> None:
    g.buyer_language = language
    from flask_babel import refresh

    refresh()


def _buyer_page(template: str, status: int = 200, **context):
    # Q12: compacted as the cached checkout page is (no buyer page has <pre> or <textarea>).
    return compact(render_template(template, **context)), status


@bp.get("/pay/<slug>")
@limiter.limit(lambda: current_app.config["KASSA_CHECKOUT_START_LIMIT"])
def start(slug: str):
    """L17: each visit starts its own checkout session with its own URL. Always live: H7, a `?mode=test` on
    the public link no longer opens a test checkout (that needs the link's signed test URL, below)."""
    return _start(slug, None)


@bp.get("/pay/<slug>/test/<signature>")
@limiter.limit(lambda: current_app.config["KASSA_CHECKOUT_START_LIMIT"])
def start_test(slug: str, signature: str):
    """T1/H7: the link's test URL, which only the merchant has (Payment links → Actions → Test)."""
    return _start(slug, signature)


def _start(slug: str, test_signature: str | None):
    language = _buyer_language()
    _use_language(language)
    try:
        checkout = checkout_service.start_session(slug, language=language, test_signature=test_signature)
    except Gone as exc:
        return _closed_page(exc, None)
    except NotFound as exc:
        return _buyer_page("checkout/unavailable.html", 404, title=_("Payment link not found"), message=exc.message)
    return redirect(url_for("checkout.page", token=checkout.token), code=303)


def _closed_page(exc: Gone, account):
    """Q5/L19: the polite page for a link that takes no more payments (410), naming the business."""
    return _buyer_page("checkout/unavailable.html", 410, title=_("This link is no longer accepting payments"),
                       message=exc.message, account=getattr(exc, "account", None) or account)


def _view(token: str) -> checkout_service.CheckoutView:
    view = checkout_service.checkout_view(token)
    if view is None:
        abort(404)
    return view


def _start_again_url(view: checkout_service.CheckoutView) -> str:
    """A fresh checkout session for the same link, in the same mode (L17)."""
    if view.checkout.invoice_id is not None or view.checkout.quote_id is not None:
        return view.checkout.snapshot["start_url"]  # V2/V4: the invoice's (quote's) page opens a new one
    if view.checkout.mode == Mode.TEST.value:
        # H7: a test checkout starts again from the link's signed test URL (as it is now: renewed or not).
        link = db.session.get(PaymentLink, view.checkout.link_id)
        return url_for("checkout.start_test", slug=view.link_slug, signature=sign_test_link(link))
    return url_for("checkout.start", slug=view.link_slug)


def _page_context(view: checkout_service.CheckoutView, *, values=None, errors=None, alert=None,
                  declined: str | None = None, token: str | None = None) -> dict:
    """What page.html shows. Deliberately no `checkout` object: apart from its token (in two URLs) the untouched
    page may show nothing of one session, because it is served from a copy rendered once (_checkout_page)."""
    checkout, account = view.checkout, view.account
    snapshot = checkout.snapshot
    language = g.buyer_language
    # Q1/Q3/Q4: priced from the buyer's posted choices (the untouched page: the link's defaults)
    summary = checkout_service.quote(snapshot, values or {}, language, account_id=account.id,
                                     mode=checkout.mode).summary if values else snapshot_summary(snapshot)
    methods = offered_methods(snapshot)  # Q10: card, and the bank debit of the link's currency
    values = dict(values or {})
    values.pop("card_cvc", None)  # C6: everything typed is kept on an error, except the security code
    values.setdefault("method", methods[0])
    if snapshot.get("email"):
        values.setdefault("email", snapshot["email"])  # V2: an invoice's checkout starts with its customer's
    values.setdefault("billing_country", account.country)
    values.setdefault("shipping_country", account.country)
    values.setdefault("shipping_same", "1")
    token = token or checkout.token
    stripe = _stripe_page(view)
    # Q12: billing (after the card's or Stripe's fields) and shipping addresses: their countries are listed once.
    billing_shown = snapshot["collect_billing_address"] and (stripe is not None or "card" in methods)
    return {
        "account": account, "snapshot": snapshot, "summary": summary, "language": language,
        "methods": methods, "values": values, "errors": errors or {}, "alert": alert, "declined": declined,
        "page_url": url_for("checkout.page", token=token), "submit_url": url_for("checkout.submit", token=token),
        "test_mode": checkout.mode == Mode.TEST.value,
        "live_unavailable": checkout.mode == Mode.LIVE.value and not _live_ready(view),
        # K6: Stripe's Payment Element takes the payment details instead of Kassa's card and bank fields.
        "stripe": stripe,
        "shared_countries": billing_shown and snapshot["collect_shipping_address"],
        # Q2: "Add promo code" only when an active code of the account applies to this link
        "promo": checkout.invoice_id is None and checkout.quote_id is None and promo_codes.offered(account, checkout.link_id),
        # Q6: the countries the account's rates name (the checkout's small "Country" select)
        "tax_countries": tax.named_countries() if (tax := snapshot_tax(snapshot)) else [],
        "mandate": mandate_text(account.id, summary.due_today.amount_minor, summary.due_today.currency, language,
                                methods[-1]) if methods[-1] != "card" else None,
    }


def _uses_payment_element(view: checkout_service.CheckoutView) -> bool:
    """K6: a live checkout of an account connected to Stripe pays through Stripe's Payment Element. (Test mode
    stays on the sandbox, whose test cards are typed into Kassa's own fields, until K12.)"""
    return view.checkout.mode == Mode.LIVE.value and view.stripe_publishable_key is not None


def _stripe_page(view: checkout_service.CheckoutView) -> dict | None:
    """What the page's Payment Element needs, or None on every other page (which then loads no Stripe.js)."""
    if not _uses_payment_element(view):
        return None
    return {"key": view.stripe_publishable_key, "js_url": current_app.config["KASSA_STRIPE_JS_URL"]}


def _live_ready(view: checkout_service.CheckoutView) -> bool:
    """Whether live payments can be taken: a connected Stripe account (read with the page's one query), or the
    live processor the tests set up (KASSA_LIVE_PROCESSOR)."""
    return view.stripe_publishable_key is not None or current_app.config.get("KASSA_LIVE_PROCESSOR") is not None


def page_cache(app: Flask | None = None) -> PageCache:
    """The untouched checkout page is the same for every session of a link version: rendered once per app
    and key, then only the session token, CSRF token and CSP nonce are filled in (see kassa.page_cache).
    `app`: the current app unless given (the first visit runs without an app context)."""
    extensions = (app or current_app).extensions
    cache = extensions.get("kassa.checkout_pages")
    if cache is None:
        cache = extensions["kassa.checkout_pages"] = PageCache(CHECKOUT_SLOTS)
    return cache


def page_key(state: checkout_service.PageState, language: str, script_root: str, app: Flask | None = None) -> tuple:
    """Everything the untouched page shows besides its slots: the key changes with any edit of the account row,
    with the session's frozen link snapshot, the language, the mode and where the app is mounted."""
    config = (app or current_app).config
    live_ready = state.stripe_publishable_key is not None or config.get("KASSA_LIVE_PROCESSOR") is not None
    return (script_root, language, state.mode, live_ready, state.stripe_publishable_key, state.link_id,
            state.snapshot_text, state.account_row)


def _allow_sources(form_action: str | None, stripe_js: bool) -> None:
    # L13: the browser checks the redirect after the form post against this page's form-action.
    if form_action:
        allow_form_action(form_action)
    if stripe_js:  # K6: the Payment Element's script and frames
        allow_stripe_js()


def _form_response(html: str, form_action: str | None, stripe_js: bool, status: int = 200):
    _allow_sources(form_action, stripe_js)
    return html, status


def _form_sources(view: checkout_service.CheckoutView) -> tuple[str | None, bool]:
    """What the payment form's CSP must allow besides Kassa: the thank-you page's origin, Stripe.js."""
    return _thank_you_origin(view.checkout), _uses_payment_element(view)


def _cached_form(token: str, state: checkout_service.PageState, key: tuple):
    """Q12: the untouched payment form straight from the page cache, without loading the session's ORM
    objects or touching Jinja and Babel (most page views); None on a miss."""
    hit = page_cache().cached(key, {"token": token, "csrf": generate_csrf(), "nonce": csp_nonce()})
    if hit is None:
        return None
    html, (form_action, stripe_js) = hit
    return _form_response(html, form_action, stripe_js)


def _checkout_page(view: checkout_service.CheckoutView, key: tuple | None):
    checkout, pages = view.checkout, page_cache()
    form_action, stripe_js = _form_sources(view)
    if key is not None:
        values = {"token": checkout.token, "csrf": generate_csrf(), "nonce": csp_nonce()}
        html = pages.render(key, "checkout/page.html", lambda: {
            **_page_context(view, token=pages.mark("token")),
            "csrf_token": lambda: pages.mark("csrf"), "csp_nonce": lambda: pages.mark("nonce"),
        }, values, meta=(form_action, stripe_js))
        if html is not None:
            return _form_response(html, form_action, stripe_js)
    html, status = _buyer_page("checkout/page.html", **_page_context(view))
    return _form_response(html, form_action, stripe_js, status)


def _trial_confirmation(view: checkout_service.CheckoutView):
    """Q9: a checkout that only started a free trial (nothing charged, no payment): what was subscribed to and
    when the first charge comes. H8 as for a payment: only the browser that started it sees the buyer's card."""
    checkout = view.checkout
    test_mode = checkout.mode == Mode.TEST.value
    show_times_in(view.account.timezone)
    if not buyer_proof.paid_here(checkout.id):
        return _buyer_page("checkout/complete.html", account=view.account, test_mode=test_mode, failed=False)
    trials = checkout_service.trials_of(checkout)
    html, status = _buyer_page("checkout/trial_started.html", account=view.account, checkout=checkout,
                               trials=trials.subscriptions, summary=trials.summary, test_mode=test_mode,
                               language=g.buyer_language)
    response = current_app.make_response((html, status))
    response.headers["Cache-Control"] = "private, no-store"
    response.vary.add("Cookie")
    return response


def _confirmation(view: checkout_service.CheckoutView):
    checkout = view.checkout
    if checkout.payment_id is None:
        return _trial_confirmation(view)
    payment = db.session.get(Payment, checkout.payment_id)
    # C5: a bank debit that failed after the fact can be paid again, another way, from a fresh checkout.
    start_again_url = _start_again_url(view) if payment.status == PaymentStatus.FAILED.value and view.link_open \
        else None
    test_mode = checkout.mode == Mode.TEST.value
    show_times_in(view.account.timezone)  # B7: the time the receipt prints, zone named
    if not buyer_proof.paid_here(checkout.id):
        # H8: whoever else holds this URL (or the payer, after the time limit) learns nothing about the buyer.
        return _buyer_page("checkout/complete.html", account=view.account, test_mode=test_mode,
                           failed=payment.status == PaymentStatus.FAILED.value, start_again_url=start_again_url,
                           failure_message=payment.failure_message)
    html, status = _buyer_page("checkout/confirmation.html", payment=payment, account=view.account,
                               checkout=checkout, summary=receipts.payment_summary(payment),
                               trials=checkout_service.trials_of(checkout).subscriptions,
                               test_mode=test_mode, language=g.buyer_language, start_again_url=start_again_url,
                               receipt_emailed=receipts.receipt_emailed(payment),
                               **receipts.subscription_facts(payment, view.account),
                               receipt_url=url_for("checkout.receipt", token=checkout.token,
                                                   sig=buyer_proof.receipt_signature(checkout.id)))
    response = current_app.make_response((html, status))
    # Personal data: kept by no cache, and the same URL shows something else to other browsers.
    response.headers["Cache-Control"] = "private, no-store"
    response.vary.add("Cookie")
    return response


@bp.get("/checkout/<token>")
def page(token: str):
    # H14: a GET writes nothing: the language chosen here is kept in the buyer's cookie and the page's form,
    # and saved on the checkout session when the form is submitted.
    key = None
    state = checkout_service.page_state(token) if page_cache().enabled() else None
    if state is not None and state.shows_form:
        key = page_key(state, _buyer_language(state.stored_language), request.script_root)
        cached = _cached_form(token, state, key)
        if cached is not None:
            return cached
    view = _view(token)
    checkout = view.checkout
    _use_language(_buyer_language(checkout.language))
    if checkout.status == CheckoutStatus.COMPLETED.value:
        return _confirmation(view)
    if checkout_service.is_expired(checkout) and (view.link_slug is not None or checkout.invoice_id is not None
                                                    or checkout.quote_id is not None):
        return _buyer_page("checkout/expired.html", 410, start_again_url=_start_again_url(view))
    if view.attempt_in_flight:  # Q5: before the link's state: this buyer's payment may hold the last seat
        if checkout_service.awaits_test_authentication(checkout):  # B2: back on the sandbox's 3-D Secure page
            return _test_authentication_page(view)
        return _buyer_page("checkout/processing.html", 202, checkout=checkout)
    try:
        view.ensure_link_open()
    except Gone as exc:
        return _closed_page(exc, view.account)
    # The key read with the state stands only if the language is still the one it was made for.
    return _checkout_page(view, key if key is not None and key[1] == g.buyer_language else None)


def _thank_you_origin(checkout: CheckoutSession) -> str | None:
    """The thank-you page's origin rebuilt from its parsed parts (H11), or None when the link has none or the
    stored address doesn't parse cleanly (saved before H11, or written to the database directly): then the
    buyer gets Kassa's own confirmation page and nothing of the address reaches a header."""
    if checkout.snapshot.get("confirmation") != "redirect":
        return None
    return web_origin(checkout.snapshot.get("redirect_url"))


@bp.post("/checkout/<token>")
@limiter.limit(lambda: current_app.config["KASSA_CHECKOUT_SUBMIT_LIMIT"])
def submit(token: str):
    view = _view(token)
    checkout = view.checkout
    form = CheckoutForm()
    language = _buyer_language(checkout.language, form.lang.data)
    _use_language(language)
    if checkout.language != language and checkout.status != CheckoutStatus.COMPLETED.value:
        checkout_service.set_language(checkout.id, language)  # C7: emails and receipt follow the page
    _allow_sources(*_form_sources(view))
    typed = form.posted()
    if form.action.data == "unpromo":  # Q2: "Remove" the promo code: re-priced without it
        typed.pop("promo", None)
    if form.action.data in ("update", "unpromo") and checkout.status == CheckoutStatus.OPEN.value \
            and not checkout_service.is_expired(checkout):
        # Q3/Q4: "Update total" (and checkout.js on every change): re-priced by the server, nothing charged.
        # Q2: "Apply" a promo code is this too.
        priced = checkout_service.quote(checkout.snapshot, typed, language, account_id=view.account.id,
                                        mode=checkout.mode)
        return _buyer_page("checkout/page.html", 422 if priced.errors else 200,
                           **_page_context(view, values=typed, errors=priced.errors))
    try:
        outcome = checkout_service.pay(token, typed, ip=client_ip(), user_agent=request.headers.get("User-Agent"),
                                       return_url=absolute_url("checkout.finish", token=token), locale=language)
    except PaymentDeclined as exc:
        db.session.rollback()
        # B8: the bank said no: its own message, not "Check the highlighted fields" (the field stays marked).
        return _buyer_page("checkout/page.html", 422, **_page_context(view, values=typed, errors=exc.errors,
                                                                        declined=exc.message))
    except ValidationFailed as exc:
        db.session.rollback()
        # Field errors are listed in the error summary; a second box repeating them would be read out twice.
        return _buyer_page("checkout/page.html", 422, **_page_context(view, values=typed, errors=exc.errors,
                                                                        alert=None if exc.errors else exc.message))
    except TooManyRequests as exc:
        db.session.rollback()
        # H4: everything typed is kept except the card number and CVC: a refused card isn't put back.
        kept = {k: v for k, v in typed.items() if k not in ("card_number", "card_cvc")}
        return _buyer_page("checkout/page.html", 429, **_page_context(view, values=kept, alert=exc.message))
    except checkout_service.PaymentInFlight:
        return _buyer_page("checkout/processing.html", 202, checkout=checkout)
    except Gone:
        return redirect(url_for("checkout.page", token=token), code=303)
    except Conflict as exc:
        db.session.rollback()
        return _buyer_page("checkout/page.html", 409, **_page_context(view, values=typed, alert=exc.message))
    if outcome.next_action is not None:
        return _next_action_page(view, outcome.next_action)
    if outcome.payment is None and not outcome.completed:
        response = current_app.make_response(_buyer_page("checkout/processing.html", 202, checkout=checkout))
    else:
        response = _after_payment(checkout)
    # H8: this browser paid; it alone sees the buyer's details on the confirmation page, for a while.
    return buyer_proof.remember_payment(response, checkout.id) if outcome.charged_now else response


def _next_action_page(view: checkout_service.CheckoutView, client_secret: str):
    """K6: the bank wants the buyer (3-D Secure, or its own page): Stripe.js runs the next action with the
    PaymentIntent's client secret, then the browser goes to `finish`. Nothing is shown as paid here.
    B2: the sandbox's 3-D Secure test card gets the sandbox's own test authentication page instead."""
    if checkout_service.is_test_authentication(client_secret):
        return _test_authentication_page(view)
    html, status = _buyer_page("checkout/processing.html", 202, checkout=view.checkout, account=view.account,
                               stripe=_stripe_page(view), client_secret=client_secret,
                               finish_url=url_for("checkout.finish", token=view.checkout.token))
    response = current_app.make_response((html, status))
    response.headers["Cache-Control"] = "private, no-store"  # the client secret belongs to this buyer only
    return response


@bp.post("/checkout/<token>/test-authentication")
@limiter.limit(lambda: current_app.config["KASSA_CHECKOUT_SUBMIT_LIMIT"])
def test_authentication(token: str):
    """B2: the answer on the sandbox's test 3-D Secure page, then back to `finish` (which records how the payment
    ended, as after Stripe.js). An unknown answer is neither: the page is shown again."""
    view = _view(token)
    _use_language(_buyer_language(view.checkout))
    form = TestAuthenticationForm()
    if form.answer.data not in ("complete", "fail"):
        return _buyer_page("checkout/test_authentication.html", 422, checkout=view.checkout, account=view.account,
                           test_mode=True, alert=_("Choose Complete or Fail to answer the test authentication."))
    checkout_service.test_authentication(token, succeed=form.answer.data == "complete")
    return redirect(url_for("checkout.finish", token=token), code=303)


def _test_authentication_page(view: checkout_service.CheckoutView):
    html, status = _buyer_page("checkout/test_authentication.html", 202, checkout=view.checkout,
                               account=view.account, test_mode=True)
    response = current_app.make_response((html, status))
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/checkout/<token>/return")
def finish(token: str):
    """K6: back from a next action (after Stripe.js ran it, or from the bank's page by `return_url`): Stripe's
    answer decides; success is never shown before Stripe says the charge succeeded or is processing. A GET
    because a bank's redirect can only be one; it settles nothing that isn't waiting for this buyer."""
    view = _view(token)
    checkout = view.checkout
    _use_language(_buyer_language(checkout.language))
    outcome = checkout_service.finish_after_action(token)
    if isinstance(outcome, checkout_service.ActionDeclined):
        _allow_sources(*_form_sources(view))
        view = _view(token)
        return _buyer_page("checkout/page.html", 422, **_page_context(
            view, values=outcome.values, errors={"payment_method": outcome.message}, declined=outcome.message))
    if outcome.payment is None and not outcome.completed:
        return redirect(url_for("checkout.page", token=token), code=303)
    response = _after_payment(checkout)
    return buyer_proof.remember_payment(response, checkout.id) if outcome.charged_now else response


def _after_payment(checkout: CheckoutSession):
    """C4: the confirmation page, or the merchant's own thank-you page (L13)."""
    snapshot = checkout.snapshot
    if _thank_you_origin(checkout):
        return redirect(snapshot["redirect_url"], code=303)
    return redirect(url_for("checkout.page", token=checkout.token), code=303)


@bp.get("/checkout/<token>/receipt.pdf")
def receipt(token: str):
    """H8: only through the signed, expiring link on the payer's confirmation page (the token alone is not
    enough: the checkout URL gets copied). H7: renders are rate-limited, copies cached."""
    checkout = _view(token).checkout
    if not buyer_proof.receipt_signature_valid(checkout.id, request.args.get("sig")):
        return _buyer_page("checkout/unavailable.html", 403, title=_("This receipt link has expired"),
                           message=_("For your privacy, a receipt can be downloaded from the payment page only "
                                     "for a short time. Your receipt was also sent to you by email."))
    payment = db.session.get(Payment, checkout.payment_id) if checkout.payment_id else None
    if payment is None or payment.status != PaymentStatus.SUCCEEDED.value:
        abort(404)

    filename, content_type, data = public_receipt_pdf(payment, ip=client_ip())
    return private_download(data, content_type, filename, "receipt.pdf")


@bp.errorhandler(KassaError)
def _buyer_error(exc: KassaError):
    return _buyer_page("checkout/unavailable.html", exc.status_code, title=_("This checkout isn't available"),
                       message=exc.message)

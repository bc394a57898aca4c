"""The bank-debit (ACH) authorization text the buyer accepts; the same words are shown and stored (E6)."""

from __future__ import annotations

from flask_babel import force_locale
from flask_babel import gettext as _

from kassa.extensions import db
from kassa.models import Account
from kassa.money import Money


def mandate_text(account_id: int, amount_minor: int, currency: str, language: str) -> str:
    account = db.session.get(Account, account_id)
    with force_locale(language):
        return _(
            "By accepting, you authorize %(merchant)s to debit %(amount)s from the bank account you entered, "
            "once, for this purchase, and your bank to process that debit. You can cancel this authorization by "
            "contacting %(merchant)s before the debit is made; you are entitled to a refund from your bank under "
            "the terms of your agreement with it.",
            merchant=account.name,
            amount=Money(amount_minor, currency).format(language),
        )

"""What the buyer pays: due today and what recurs. One pure function (`build_order_summary`) shared by the link
editor's preview, the checkout page, the amount charged, the payment record, receipts, the payment panel,
exports and subscriptions, so they can never disagree.

Free trials (Q9): a link's trial (N days, link-level like Stripe's subscription_data.trial_period_days) applies to
every recurring group; a group on trial is not due today ("Free for 14 days, then €X every month"), so due today
is the one-time lines only (it may be zero: then the card is only saved).

Pricing (Q1, Q3, Q4): a line is its unit price (the link's, or the amount a pay-what-you-want buyer typed) times
its quantity (the link's, or the buyer's within the item's min/max) = gross; less the line's discount (a
percentage, rounded half-up once per line in the currency's minor unit, or a fixed amount for the line, never
more than the gross) = net. The totals are sums of the lines' minor units. Later additions (promo codes, tax)
take the same lines as input and add their own rows here.

Promo codes (Q2) come after the line discounts and apply to what is charged today only (one-time lines and the
first period of recurring ones; later periods are charged at the full net): a percentage is taken off each
line's net, rounded half-up once per line; an amount is shared across the lines in proportion to their nets by
the largest-remainder method (ties to the earlier line), never more than the total. A line's `amount` is its
net less its promo share: the tax step taxes that.

Tax (Q6), when the link collects it (a `TaxContext`): the buyer's country picks one of the account's rates, applied
per line to the line's final net `line.amount` in minor units: exclusive tax = round_half_up(net × rate), added
to what is due; inclusive tax = net − round_half_up(net / (1 + rate)), a part of the net shown "incl.". A valid
EU VAT number of another member state than the merchant's: reverse charge, no tax. Recurring groups include
their lines' exclusive tax in the amount charged every period."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Protocol

from babel.numbers import format_decimal
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _

from kassa.models import BillingFrequency, TermType
from kassa.money import Money, sum_money
from kassa.tax import TaxBreakdownRow, TaxContext, TaxRateSpec, exclusive_tax, inclusive_tax, normalize_vat_id


class ItemLike(Protocol):
    name: str
    description: str
    unit_amount_minor: int
    currency: str
    quantity: int
    frequency: str
    term_type: str | None
    term_count: int | None
    # Q1/Q3/Q4 (optional on an ItemLike: read with getattr, so rows from before them price as they did)
    # discount_type: str  "" | "percent" | "amount"; discount_value: int (basis points | minor units)
    # quantity_adjustable: bool, quantity_min / quantity_max: int
    # custom_amount: bool, amount_min_minor / amount_max_minor: int | None


class DiscountType:
    NONE = ""
    PERCENT = "percent"  # discount_value in hundredths of a percent: 1250 = 12.5 %
    AMOUNT = "amount"  # discount_value in minor units, once per line


DISCOUNT_TYPES = (DiscountType.NONE, DiscountType.PERCENT, DiscountType.AMOUNT)
PROMO_KINDS = (DiscountType.PERCENT, DiscountType.AMOUNT)  # Q2: a promo code's kind, valued as a discount's
MAX_PERCENT_BP = 10_000  # 100 %


@dataclass(frozen=True)
class OrderItem:
    """An ItemLike as a value: a link's line frozen for a checkout, or a line of the editor's preview."""

    name: str
    description: str
    unit_amount_minor: int
    currency: str
    quantity: int
    frequency: str
    term_type: str | None
    term_count: int | None
    product_id: int | None = None
    discount_type: str = DiscountType.NONE
    discount_value: int = 0
    quantity_adjustable: bool = False
    quantity_min: int = 1
    quantity_max: int = 1
    custom_amount: bool = False
    amount_min_minor: int | None = None
    amount_max_minor: int | None = None


@dataclass(frozen=True)
class BuyerChoices:
    """What the buyer chose on the checkout, by line position: quantities of adjustable items (Q3) and typed
    prices of pay-what-you-want items (Q4, minor units). Checked against the item by `choice_errors`; a choice
    for a line that allows none is ignored. Q2: the promo code the buyer applied, with the terms the promo
    codes service found valid for it (`promo_kind` "percent" | "amount", `promo_value` basis points | minor
    units, `promo_id` the code's row); kept with the attempt, so the payment is priced as it was charged.
    (Q6 country joins here.)"""

    quantities: Mapping[int, int] = field(default_factory=dict)
    amounts: Mapping[int, int] = field(default_factory=dict)
    promo_code: str = ""
    promo_kind: str = ""
    promo_value: int = 0
    promo_id: int | None = None
    # Q6: the buyer's country (ISO code: picks the tax rate) and VAT number (normalized; "" for none)
    country: str = ""
    vat_id: str = ""

    def stored(self) -> dict:
        data: dict = {"quantities": {str(k): v for k, v in self.quantities.items()},
                      "amounts": {str(k): v for k, v in self.amounts.items()},
                      "country": self.country, "vat_id": self.vat_id}
        if self.promo_code:
            data["promo"] = {"code": self.promo_code, "kind": self.promo_kind, "value": self.promo_value,
                             "id": self.promo_id}
        return data

    @classmethod
    def from_stored(cls, data: Mapping | None) -> BuyerChoices:
        data = data or {}
        promo = data.get("promo") or {}
        return cls(quantities={int(k): int(v) for k, v in (data.get("quantities") or {}).items()},
                   amounts={int(k): int(v) for k, v in (data.get("amounts") or {}).items()},
                   promo_code=promo.get("code") or "", promo_kind=promo.get("kind") or "",
                   promo_value=int(promo.get("value") or 0), promo_id=promo.get("id"),
                   country=str(data.get("country") or ""), vat_id=normalize_vat_id(data.get("vat_id")))


NO_CHOICES = BuyerChoices()


@dataclass(frozen=True)
class SummaryLine:
    name: str
    description: str
    quantity: int
    unit_amount: Money
    amount: Money  # net: gross less discount, less the line's promo share (charged today)
    frequency: BillingFrequency
    term_type: TermType | None
    term_count: int | None
    gross: Money | None = None
    discount: Money | None = None
    discount_type: str = DiscountType.NONE
    discount_value: int = 0
    index: int = 0
    quantity_adjustable: bool = False
    quantity_min: int = 1
    quantity_max: int = 1
    custom_amount: bool = False
    amount_min: Money | None = None
    amount_max: Money | None = None
    promo: Money | None = None  # Q2: the line's share of the promo code (today only)
    # Q6: the line's tax at the buyer's rate (None: no tax), and whether it is part of `amount` (inclusive)
    tax: Money | None = None
    tax_inclusive: bool = False

    @property
    def period_amount(self) -> Money:
        """What a recurring line charges every period: its net without today's promo share (Q2)."""
        return self.amount + self.promo if self.promo is not None else self.amount

    @property
    def exclusive_tax(self) -> Money:
        """The tax added on top of `amount` (zero for an inclusive rate or none)."""
        return self.tax if self.tax is not None and not self.tax_inclusive else Money.zero(self.amount.currency)

    @property
    def has_discount(self) -> bool:
        return self.discount is not None and self.discount.amount_minor > 0

    @property
    def discount_percent(self) -> Decimal:
        """12.5 for 1250 basis points, as shown in "Discount (12.5%)"."""
        return (Decimal(self.discount_value) / 100).normalize()

    @property
    def is_recurring(self) -> bool:
        return self.frequency.is_recurring

    @property
    def group_key(self) -> tuple[str, str | None, int | None]:
        """Items with the same frequency and term share one subscription (R4)."""
        return (self.frequency.value, self.term_type.value if self.term_type else None, self.term_count)


@dataclass(frozen=True)
class RecurringGroup:
    frequency: BillingFrequency
    term_type: TermType
    term_count: int | None
    # charged every period, the first time today (less any promo: see OrderSummary.due_today) or at the trial's
    # end; Q6: with the exclusive tax on the period's full net
    amount: Money
    lines: tuple[SummaryLine, ...]
    tax: Money | None = None  # Q6: the tax part of `amount` (inclusive and exclusive), None without tax
    trial_days: int = 0  # Q9: the first period is charged after this many days, not today

    @property
    def on_trial(self) -> bool:
        return self.trial_days > 0


@dataclass(frozen=True)
class OrderSummary:
    currency: str
    lines: tuple[SummaryLine, ...]
    one_time_total: Money  # Q6: with the one-time lines' exclusive tax
    groups: tuple[RecurringGroup, ...]
    promo_code: str = ""  # Q2: the code applied ("" none)
    # Q6: the link collects tax (then the summary shows a tax row, or the reverse-charge note), the rates'
    # breakdown (name, percent, taxable amount, tax), and whether VAT is reverse-charged
    collects_tax: bool = False
    tax_breakdown: tuple[TaxBreakdownRow, ...] = ()
    reverse_charge: bool = False
    country: str = ""
    vat_id: str = ""

    @property
    def due_today(self) -> Money:
        """One-time items plus the first period of every recurring group not on a free trial (Q9), less the promo,
        plus exclusive tax: all charged at checkout (the lines' amounts, which already have their promo share taken
        off, and the tax on them)."""
        return sum_money((m for line in self.lines_today for m in (line.amount, line.exclusive_tax)), self.currency)

    @property
    def promo_today(self) -> Money:
        """Q2: what the promo code takes off today's charge."""
        return sum_money((line.promo or Money.zero(self.currency) for line in self.lines_today), self.currency)

    @property
    def has_promo(self) -> bool:
        return bool(self.promo_code)

    @property
    def trial_days(self) -> int:
        """Q9: the free trial of the recurring groups (0: none)."""
        return max((group.trial_days for group in self.groups), default=0)

    @property
    def lines_today(self) -> tuple[SummaryLine, ...]:
        """The lines charged at checkout: all but those of a group on trial (Q9)."""
        later = {id(line) for group in self.groups if group.on_trial for line in group.lines}
        return tuple(line for line in self.lines if id(line) not in later)

    @property
    def has_recurring(self) -> bool:
        return bool(self.groups)

    @property
    def gross_today(self) -> Money:
        """Q1: what is due today before discounts (the lines charged at checkout: one-time and first periods)."""
        return sum_money((line.gross or line.amount for line in self.lines_today), self.currency)

    @property
    def discount_today(self) -> Money:
        return sum_money((line.discount or Money.zero(self.currency) for line in self.lines_today), self.currency)

    @property
    def has_discount(self) -> bool:
        return any(line.has_discount for line in self.lines)

    @property
    def net_today(self) -> Money:
        """Q1/Q6: what is due today after discounts and before exclusive tax (the lines' nets)."""
        return sum_money((line.amount for line in self.lines_today), self.currency)

    @property
    def tax_today(self) -> Money:
        """Q6: all tax in what is due today, inclusive and exclusive."""
        return sum_money((line.tax for line in self.lines_today if line.tax is not None), self.currency)

    @property
    def exclusive_tax_today(self) -> Money:
        return sum_money((line.exclusive_tax for line in self.lines_today), self.currency)

    def money(self, minor: int) -> Money:
        return Money(int(minor), self.currency)

    @property
    def tax_context(self) -> TaxContext:
        """Q6: the one rate this order was taxed at (or none), for pricing a payment's stored lines again."""
        rates = tuple(TaxRateSpec(id=0, name=row.name, percentage_bp=row.percentage_bp, inclusive=row.inclusive)
                      for row in self.tax_breakdown[:1])
        return TaxContext(rates=rates)

    @property
    def is_adjustable(self) -> bool:
        """Q3/Q4: the buyer can change something on the checkout (a quantity or a price)."""
        return any(line.quantity_adjustable or line.custom_amount for line in self.lines)


def line_discount(gross: Money, discount_type: str, discount_value: int) -> Money:
    """Q1: the discount of one line: a percentage of its gross rounded half-up to the minor unit, or a fixed
    amount; never negative, never more than the gross."""
    if discount_type == DiscountType.PERCENT:
        value = gross.percent(Decimal(min(max(int(discount_value), 0), MAX_PERCENT_BP)) / 100)
    elif discount_type == DiscountType.AMOUNT:
        value = Money(max(int(discount_value), 0), gross.currency)
    else:
        return Money.zero(gross.currency)
    return min(value, gross)


def allocate_amount(total_minor: int, weights: list[int]) -> list[int]:
    """Q2: `total_minor` shared in proportion to `weights` (non-negative minor units) by the largest-remainder
    method: each share rounded down, the minor units left over go one each to the largest remainders (ties to
    the earlier line). Never more than the weights' sum; the shares add up exactly."""
    whole = sum(weights)
    total_minor = min(max(total_minor, 0), whole)
    if whole == 0 or total_minor == 0:
        return [0] * len(weights)
    shares = [total_minor * w // whole for w in weights]
    remainders = sorted(range(len(weights)), key=lambda i: (-(total_minor * weights[i] % whole), i))
    for i in remainders[: total_minor - sum(shares)]:
        shares[i] += 1
    return shares


def promo_shares(nets: list[Money], kind: str, value: int, currency: str) -> list[Money]:
    """Q2: each line's share of a promo: a percentage of each net rounded half-up per line, or an amount
    allocated across the nets (`allocate_amount`)."""
    if kind == DiscountType.PERCENT:
        return [line_discount(net, DiscountType.PERCENT, value) for net in nets]
    if kind == DiscountType.AMOUNT:
        return [Money(share, currency)
                for share in allocate_amount(int(value), [max(net.amount_minor, 0) for net in nets])]
    return [Money.zero(currency) for _net in nets]


def choice_errors(items: Iterable[ItemLike], choices: BuyerChoices) -> dict[int, tuple[str, str]]:
    """Q3/Q4: what is wrong with the buyer's choices, by line: (`"quantity"` | `"amount"`, message). The server
    checks every choice here, whatever the page allowed (a tampered form is refused, nothing charged)."""
    problems: dict[int, tuple[str, str]] = {}
    for index, item in enumerate(items):
        if getattr(item, "quantity_adjustable", False) and index in choices.quantities:
            low, high = int(item.quantity_min), int(item.quantity_max)
            if not low <= choices.quantities[index] <= high:
                problems[index] = ("quantity", _("Choose a quantity from %(min)d to %(max)d.", min=low, max=high))
        if getattr(item, "custom_amount", False) and index in choices.amounts:
            amount = choices.amounts[index]
            low_minor = item.amount_min_minor or 1
            high_minor = item.amount_max_minor
            if amount < low_minor:
                problems[index] = ("amount", _("Enter at least %(min)s.",
                                               min=Money(low_minor, item.currency).format(_locale())))
            elif high_minor is not None and amount > high_minor:
                problems[index] = ("amount", _("Enter at most %(max)s.",
                                               max=Money(high_minor, item.currency).format(_locale())))
    return problems


def _locale() -> str:
    try:
        return str(get_locale() or "en")
    except Exception:  # outside a request (unit tests of the pure function)
        return "en"


def build_order_summary(items: Iterable[ItemLike], currency: str, choices: BuyerChoices = NO_CHOICES,
                        tax: TaxContext | None = None, *, trial_days: int = 0) -> OrderSummary:
    """The one pricing function: items (a link snapshot's, a draft's, a payment's) and the buyer's valid choices
    in, lines and totals out. Choices are assumed checked (`choice_errors`); out-of-range ones are clamped.
    Q6: with a `tax` context (the link collects tax), the rate of the buyer's `choices.country` applies to every
    line, or none when a valid VAT number makes it a reverse charge (`TaxContext.reverse_charge`).
    ``trial_days`` (Q9): the link's free trial, on every recurring group (whose lines then take no promo)."""
    reverse = tax is not None and tax.reverse_charge(choices.vat_id)
    rate = tax.rate_for(choices.country) if tax is not None and not reverse else None
    trial_days = max(int(trial_days or 0), 0)
    lines = []
    items_list = list(items)
    for index, item in enumerate(items_list):
        adjustable = bool(getattr(item, "quantity_adjustable", False))
        custom = bool(getattr(item, "custom_amount", False))
        quantity = int(item.quantity)
        q_min, q_max = int(getattr(item, "quantity_min", 1) or 1), int(getattr(item, "quantity_max", 1) or 1)
        if adjustable and index in choices.quantities:
            quantity = min(max(int(choices.quantities[index]), q_min), max(q_min, q_max))
        unit_minor = int(item.unit_amount_minor)
        a_min = getattr(item, "amount_min_minor", None)
        a_max = getattr(item, "amount_max_minor", None)
        if custom and index in choices.amounts:
            unit_minor = max(int(choices.amounts[index]), a_min or 1)
            if a_max is not None:
                unit_minor = min(unit_minor, a_max)
        unit = Money(unit_minor, item.currency)
        gross = unit * quantity
        d_type = getattr(item, "discount_type", DiscountType.NONE) or DiscountType.NONE
        d_value = int(getattr(item, "discount_value", 0) or 0)
        stored = getattr(item, "discount_minor", None)  # a payment's line keeps the discount it was charged
        discount = Money(int(stored), item.currency) if stored is not None else line_discount(gross, d_type, d_value)
        frequency = BillingFrequency(item.frequency)
        term = TermType(item.term_type) if frequency.is_recurring and item.term_type else None
        net = gross - discount
        lines.append(
            SummaryLine(
                name=item.name,
                description=item.description or "",
                quantity=quantity,
                unit_amount=unit,
                amount=net,
                frequency=frequency,
                term_type=term,
                term_count=int(item.term_count) if term is TermType.FIXED and item.term_count else None,
                gross=gross, discount=discount, discount_type=d_type, discount_value=d_value, index=index,
                quantity_adjustable=adjustable, quantity_min=q_min, quantity_max=q_max, custom_amount=custom,
                amount_min=Money(a_min, item.currency) if a_min is not None else None,
                amount_max=Money(a_max, item.currency) if a_max is not None else None,
            )
        )
    # Q2 then Q6: the promo comes off each line's net (not a line whose first charge waits for a free trial, Q9),
    # and the tax is on what is left (the amount charged).
    lines = [_taxed(line, rate) for line in _with_promo(lines, items_list, currency, choices,
                                                        later=trial_days > 0)]
    groups: dict[tuple, list[SummaryLine]] = {}
    for line in lines:
        if line.is_recurring:
            groups.setdefault(line.group_key, []).append(line)
    breakdown = ()
    if rate is not None:
        breakdown = (TaxBreakdownRow(
            name=rate.name, percentage_bp=rate.percentage_bp, inclusive=rate.inclusive,
            taxable_minor=sum(line.amount.amount_minor - (line.tax.amount_minor if rate.inclusive else 0)
                              for line in lines if not (trial_days and line.is_recurring)),
            tax_minor=sum(line.tax.amount_minor for line in lines if not (trial_days and line.is_recurring))),)
    return OrderSummary(
        currency=currency,
        lines=tuple(lines),
        one_time_total=sum_money((m for line in lines if not line.is_recurring for m in (line.amount, line.exclusive_tax)),
                                 currency),
        groups=tuple(
            RecurringGroup(
                frequency=members[0].frequency,
                term_type=members[0].term_type or TermType.AUTO_RENEW,
                term_count=members[0].term_count,
                # every period's charge: the net without the promo (which is for today only), and its tax
                amount=sum_money((m for line in members for m in _period_charge(line, rate)), currency),
                lines=tuple(members),
                tax=sum_money((_tax_on(line.period_amount, rate) for line in members), currency)
                if rate is not None else None,
                trial_days=trial_days,
            )
            for members in groups.values()
        ),
        promo_code=choices.promo_code if any(line.promo is not None for line in lines) else "",
        collects_tax=tax is not None, tax_breakdown=breakdown, reverse_charge=reverse,
        country=choices.country, vat_id=choices.vat_id,
    )


def _tax_on(net: Money, rate: TaxRateSpec) -> Money:
    """Q6: the tax in (inclusive) or on (exclusive) a net amount at `rate`, in whole minor units."""
    part = inclusive_tax if rate.inclusive else exclusive_tax
    return Money(part(net.amount_minor, rate.percentage_bp), net.currency)


def _taxed(line: SummaryLine, rate: TaxRateSpec | None) -> SummaryLine:
    if rate is None:
        return line
    return replace(line, tax=_tax_on(line.amount, rate), tax_inclusive=rate.inclusive)


def _period_charge(line: SummaryLine, rate: TaxRateSpec | None) -> tuple[Money, ...]:
    """A recurring line's charge every period: the net, and the tax added on it (exclusive rates only)."""
    net = line.period_amount
    if rate is None or rate.inclusive:
        return (net,)
    return (net, _tax_on(net, rate))


def _with_promo(lines: list[SummaryLine], items: list, currency: str, choices: BuyerChoices, *,
                later: bool = False) -> list[SummaryLine]:
    """Q2: each line less its promo share. A payment's lines keep the share they were charged (`promo_minor`).
    `later` (Q9): recurring lines are charged after a free trial, not today, and take no share."""
    if not choices.promo_code:
        return lines
    stored = [getattr(item, "promo_minor", None) for item in items]
    if stored and all(value is not None for value in stored):
        shares = [Money(int(value), currency) for value in stored]
    elif choices.promo_kind in PROMO_KINDS:
        base = [Money.zero(currency) if later and line.is_recurring else line.amount for line in lines]
        shares = promo_shares(base, choices.promo_kind, choices.promo_value, currency)
    else:
        return lines
    return [replace(line, amount=line.amount - share, promo=share) for line, share in zip(lines, shares, strict=True)]


# -- wording (translated at render time) ------------------------------------------------------------


def frequency_label(frequency: str | BillingFrequency) -> str:
    """The name in the billing frequency menu."""
    return {
        BillingFrequency.ONE_TIME: _("One-time"),
        BillingFrequency.WEEKLY: _("Weekly"),
        BillingFrequency.BIWEEKLY: _("Every two weeks"),
        BillingFrequency.MONTHLY: _("Monthly"),
        BillingFrequency.QUARTERLY: _("Quarterly (every three months)"),
        BillingFrequency.SEMIANNUAL: _("Every six months"),
        BillingFrequency.YEARLY: _("Yearly"),
        BillingFrequency.BIENNIAL: _("Every two years"),
    }[BillingFrequency(frequency)]


def every_label(frequency: str | BillingFrequency) -> str:
    """"every month" — the period phrase used in sentences."""
    return {
        BillingFrequency.WEEKLY: _("every week"),
        BillingFrequency.BIWEEKLY: _("every two weeks"),
        BillingFrequency.MONTHLY: _("every month"),
        BillingFrequency.QUARTERLY: _("every three months"),
        BillingFrequency.SEMIANNUAL: _("every six months"),
        BillingFrequency.YEARLY: _("every year"),
        BillingFrequency.BIENNIAL: _("every two years"),
    }[BillingFrequency(frequency)]


def term_label(term_type: str | TermType | None, term_count: int | None) -> str:
    if term_type is None or TermType(term_type) is TermType.AUTO_RENEW:
        return _("until cancelled")
    return ngettext("%(num)d payment", "%(num)d payments", term_count or 0)


def line_recurrence(line: SummaryLine) -> str | None:
    """Under an item's name: "Monthly · 7 payments" / "Monthly · until cancelled"."""
    if not line.is_recurring:
        return None
    return f"{frequency_label(line.frequency)} · {term_label(line.term_type, line.term_count)}"


def group_sentence(group: RecurringGroup, locale: str) -> str:
    """"Then €10.00 every month, 7 payments in total" or "… until cancelled"; with a free trial (Q9) "Free for 14
    days, then €10.00 every month"."""
    amount = group.amount.format(locale)
    every = every_label(group.frequency)
    if group.on_trial:
        return ngettext("Free for %(num)d day, then %(amount)s %(every)s",
                        "Free for %(num)d days, then %(amount)s %(every)s",
                        group.trial_days, amount=amount, every=every)
    if group.term_type is TermType.FIXED and group.term_count:
        return ngettext(
            "Then %(amount)s %(every)s, %(num)d payment in total",
            "Then %(amount)s %(every)s, %(num)d payments in total",
            group.term_count,
            amount=amount,
            every=every,
        )
    return _("Then %(amount)s %(every)s until cancelled", amount=amount, every=every)


def recurs_sentence(amount: Money, frequency: str | BillingFrequency, term_type: str | TermType | None,
                    term_count: int | None, locale: str) -> str:
    """Q11: what recurs, on its own: "€10.00 every month until cancelled" / "…, 7 payments in total"."""
    every = every_label(frequency)
    if term_type is not None and TermType(term_type) is TermType.FIXED and term_count:
        return ngettext("%(amount)s %(every)s, %(num)d payment in total",
                        "%(amount)s %(every)s, %(num)d payments in total", term_count,
                        amount=amount.format(locale), every=every)
    return _("%(amount)s %(every)s until cancelled", amount=amount.format(locale), every=every)


def subscription_sentence(sub, locale: str) -> str:
    """Q11: `recurs_sentence` of a subscription (what it charges each period)."""
    return recurs_sentence(Money(sub.amount_minor, sub.currency), sub.frequency, sub.term_type, sub.term_count,
                           locale)


def trial_sentence(sub, until: str, locale: str) -> str:
    """Q9, after the checkout: "Free trial until Dec 20, 2026, then €10.00 every month", for a subscription (its
    amount_minor, currency, frequency); `until`: the trial's end already formatted through kassa.timefmt, in the
    reader's language and the account's zone."""
    return _("Free trial until %(date)s, then %(amount)s %(every)s", date=until,
             amount=Money(sub.amount_minor, sub.currency).format(locale), every=every_label(sub.frequency))


def discount_label(line: SummaryLine) -> str:
    """Q1: "Discount (10%)" or "Discount" for a fixed amount."""
    if line.discount_type == DiscountType.PERCENT:
        return _("Discount (%(percent)s%%)", percent=format_decimal(line.discount_percent, locale=_locale()))
    return _("Discount")


def promo_label(summary: OrderSummary) -> str:
    """Q2: "Promo SUMMER10" — the order summary's, the receipt's and the email's row."""
    return _("Promo %(code)s", code=summary.promo_code)


def promo_note(summary: OrderSummary) -> str | None:
    """Q2: on an order with recurring items, the promo is for today's charge only."""
    if not (summary.has_promo and summary.has_recurring):
        return None
    return _("The promo code applies to today's payment only, not to later periods.")


def tax_label(row: TaxBreakdownRow) -> str:
    """Q6: "BTW hoog (21%)" for an exclusive rate, "incl. BTW hoog (21%)" for an inclusive one."""
    percent = format_decimal(row.percent, locale=_locale())
    if row.inclusive:
        return _("Incl. %(name)s (%(percent)s%%)", name=row.name, percent=percent)
    return _("%(name)s (%(percent)s%%)", name=row.name, percent=percent)


def reverse_charge_note() -> str:
    return _("Reverse charge: VAT to be accounted for by the recipient")

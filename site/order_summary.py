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
take the same lines as input and add their own rows here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from babel.numbers import format_decimal
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _

from kassa.models import BillingFrequency, TermType
from kassa.money import Money, sum_money


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
    for a line that allows none is ignored. (Q2 promo code and Q6 country join here.)"""

    quantities: Mapping[int, int] = field(default_factory=dict)
    amounts: Mapping[int, int] = field(default_factory=dict)

    def stored(self) -> dict:
        return {"quantities": {str(k): v for k, v in self.quantities.items()},
                "amounts": {str(k): v for k, v in self.amounts.items()}}

    @classmethod
    def from_stored(cls, data: Mapping | None) -> BuyerChoices:
        data = data or {}
        return cls(quantities={int(k): int(v) for k, v in (data.get("quantities") or {}).items()},
                   amounts={int(k): int(v) for k, v in (data.get("amounts") or {}).items()})


NO_CHOICES = BuyerChoices()


@dataclass(frozen=True)
class SummaryLine:
    name: str
    description: str
    quantity: int
    unit_amount: Money
    amount: Money  # net: gross less discount
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
    amount: Money  # charged every period, the first time today (or at the trial's end)
    lines: tuple[SummaryLine, ...]
    trial_days: int = 0  # Q9: the first period is charged after this many days, not today

    @property
    def on_trial(self) -> bool:
        return self.trial_days > 0


@dataclass(frozen=True)
class OrderSummary:
    currency: str
    lines: tuple[SummaryLine, ...]
    one_time_total: Money
    groups: tuple[RecurringGroup, ...]

    @property
    def due_today(self) -> Money:
        """One-time items plus the first period of every recurring group not on a free trial (Q9): all charged at
        checkout."""
        return sum_money([self.one_time_total, *(group.amount for group in self.groups if not group.on_trial)],
                         self.currency)

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


def build_order_summary(items: Iterable[ItemLike], currency: str, choices: BuyerChoices = NO_CHOICES, *,
                        trial_days: int = 0) -> OrderSummary:
    """The one pricing function: items (a link snapshot's, a draft's, a payment's) and the buyer's valid choices
    in, lines and totals out. Choices are assumed checked (`choice_errors`); out-of-range ones are clamped.
    ``trial_days`` (Q9): the link's free trial, on every recurring group."""
    lines = []
    for index, item in enumerate(items):
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
        lines.append(
            SummaryLine(
                name=item.name,
                description=item.description or "",
                quantity=quantity,
                unit_amount=unit,
                amount=gross - discount,
                frequency=frequency,
                term_type=term,
                term_count=int(item.term_count) if term is TermType.FIXED and item.term_count else None,
                gross=gross, discount=discount, discount_type=d_type, discount_value=d_value, index=index,
                quantity_adjustable=adjustable, quantity_min=q_min, quantity_max=q_max, custom_amount=custom,
                amount_min=Money(a_min, item.currency) if a_min is not None else None,
                amount_max=Money(a_max, item.currency) if a_max is not None else None,
            )
        )
    groups: dict[tuple, list[SummaryLine]] = {}
    for line in lines:
        if line.is_recurring:
            groups.setdefault(line.group_key, []).append(line)
    return OrderSummary(
        currency=currency,
        lines=tuple(lines),
        one_time_total=sum_money((line.amount for line in lines if not line.is_recurring), currency),
        groups=tuple(
            RecurringGroup(
                frequency=members[0].frequency,
                term_type=members[0].term_type or TermType.AUTO_RENEW,
                term_count=members[0].term_count,
                amount=sum_money((line.amount for line in members), currency),
                lines=tuple(members),
                trial_days=max(int(trial_days or 0), 0),
            )
            for members in groups.values()
        ),
    )


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

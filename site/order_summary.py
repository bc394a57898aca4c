"""What the buyer pays: due today and what recurs. One function shared by the link editor's preview,
the checkout page, receipts and subscriptions, so they can never disagree."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from flask_babel import gettext as _
from flask_babel import ngettext

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


@dataclass(frozen=True)
class SummaryLine:
    name: str
    description: str
    quantity: int
    unit_amount: Money
    amount: Money
    frequency: BillingFrequency
    term_type: TermType | None
    term_count: int | None

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
    amount: Money  # charged every period, the first time today
    lines: tuple[SummaryLine, ...]


@dataclass(frozen=True)
class OrderSummary:
    currency: str
    lines: tuple[SummaryLine, ...]
    one_time_total: Money
    groups: tuple[RecurringGroup, ...]

    @property
    def due_today(self) -> Money:
        """One-time items plus the first period of every recurring group: all charged at checkout."""
        return sum_money([self.one_time_total, *(group.amount for group in self.groups)], self.currency)

    @property
    def has_recurring(self) -> bool:
        return bool(self.groups)


def build_order_summary(items: Iterable[ItemLike], currency: str) -> OrderSummary:
    lines = []
    for item in items:
        unit = Money(int(item.unit_amount_minor), item.currency)
        frequency = BillingFrequency(item.frequency)
        term = TermType(item.term_type) if frequency.is_recurring and item.term_type else None
        lines.append(
            SummaryLine(
                name=item.name,
                description=item.description or "",
                quantity=int(item.quantity),
                unit_amount=unit,
                amount=unit * int(item.quantity),
                frequency=frequency,
                term_type=term,
                term_count=int(item.term_count) if term is TermType.FIXED and item.term_count else None,
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
    """"Then €10.00 every month, 7 payments in total" or "… until cancelled"."""
    amount = group.amount.format(locale)
    every = every_label(group.frequency)
    if group.term_type is TermType.FIXED and group.term_count:
        return ngettext(
            "Then %(amount)s %(every)s, %(num)d payment in total",
            "Then %(amount)s %(every)s, %(num)d payments in total",
            group.term_count,
            amount=amount,
            every=every,
        )
    return _("Then %(amount)s %(every)s until cancelled", amount=amount, every=every)

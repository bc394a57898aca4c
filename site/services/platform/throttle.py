"""Rate limits that a service counts itself (H7, H13), where a route decorator can't see the key (a link, a
payment, a user): the same Flask-Limiter storage and strategy as the decorated routes (memory, or Redis)."""

from __future__ import annotations

from limits import parse_many

from kassa.clock import now
from kassa.extensions import limiter


def allow(*rules: tuple[str, tuple[str, ...]]) -> bool:
    """Count one use against every (limit, key) in `rules`, e.g. ("20 per hour", ("receipt-mail", "ip", ip)).

    True when every limit still had room (and the use is counted against each); False when any is used up,
    and then nothing is counted, so a refused use never eats into the other limits."""
    if not limiter.enabled:
        return True
    strategy = limiter.limiter
    items = [(item, key) for text, key in rules for item in parse_many(text)]
    if not all(strategy.test(item, "kassa", *key) for item, key in items):
        return False
    for item, key in items:
        strategy.hit(item, "kassa", *key)
    return True


def take(*rules: tuple[str, tuple[str, ...]]) -> bool:
    """As `allow`, but exact under concurrency (I7): each limit's place is taken atomically by the storage (the
    moving window's acquire, under the memory storage's lock or Redis's script), so parallel calls never get
    more through than any limit allows. A call seen over a limit counts nowhere; one that loses a race for a
    later limit keeps the place it took in the earlier ones (the limits err on the side of refusing)."""
    if not limiter.enabled:
        return True
    strategy = limiter.limiter
    items = [(item, key) for text, key in rules for item in parse_many(text)]
    if not all(strategy.test(item, "kassa", *key) for item, key in items):
        return False
    return all(strategy.hit(item, "kassa", *key) for item, key in items)


def retry_after(*rules: tuple[str, tuple[str, ...]]) -> int:
    """Seconds until every limit in `rules` has room again (for a Retry-After header and the message)."""
    if not limiter.enabled:
        return 0
    strategy, waits = limiter.limiter, [0]
    for text, key in rules:
        for item in parse_many(text):
            if not strategy.test(item, "kassa", *key):
                reset, _remaining = strategy.get_window_stats(item, "kassa", *key)
                waits.append(max(int(reset - now().timestamp()) + 1, 1))
    return max(waits)


def window(text: str, key: tuple[str, ...]) -> tuple[int, int, int]:
    """I7: (limit, remaining, seconds until the window resets) of one limit, for RateLimit-* headers."""
    item = parse_many(text)[0]
    if not limiter.enabled:
        return item.amount, item.amount, 0
    reset, remaining = limiter.limiter.get_window_stats(item, "kassa", *key)
    return item.amount, max(remaining, 0), max(int(reset - now().timestamp()) + 1, 0)

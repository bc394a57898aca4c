"""Platform services every domain may use; they import no other service package.

outbox (side effects after commit, run by the worker), mail (queue an email), ticks (the periodic tick and
its per-account tasks), counters (gap-free numbers), audit (who did what), throttle (service-side rate
limits), maintenance (SQLite statistics), notifications (in-app notices and the team emails that go with them).
"""

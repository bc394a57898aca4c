"""A flow run in a child process that `kill -9`s itself at an armed crash point (H5, tests/web/test_h5_crash.py).

    python -m tests.support.crash_child <database url> <kind> <n> refund <user id> <payment id> <amount> <key>

Exits 0 when the flow finished without reaching the point; a crash ends it with SIGKILL: no cleanup, no
rollback by Python, connections cut, as when the server or worker is killed.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    url, kind, n, flow, *args = argv
    from kassa import create_app
    from kassa.actor import Actor
    from kassa.extensions import db
    from kassa.models import User
    from tests.support.faults import FaultPlan, install

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url, "KASSA_PASSWORD_HASH_PROFILE": "fast",
                      "KASSA_BASE_URL": "http://kassa.test", "SERVER_NAME": None,
                      "RATELIMIT_STORAGE_URI": "memory://"})
    with app.app_context():
        plan = FaultPlan(kill=True)
        install(plan)
        assert flow == "refund", flow
        from kassa.services.payments.refunds import refund_payment

        user_id, payment_id, amount, key = args
        user = db.session.get(User, int(user_id))
        actor = Actor(user=user, account_id=user.account_id)
        plan.arm(kind, int(n))
        refund_payment(actor, int(payment_id), amount_text=amount, reason="duplicate", note="", locale="en",
                       idempotency_key=key)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

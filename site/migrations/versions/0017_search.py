"""search: indexes that find a payment by email, name, last 4, amount or link, newest first (B3)

Revision ID: 0017_search
Revises: 0016_stripe_webhooks
Create Date: 2026-12-06 18:00:00

"""
import sqlalchemy as sa
from alembic import op

from kassa.database import search_key

# revision identifiers, used by Alembic.
revision = '0017_search'
down_revision = '0016_stripe_webhooks'
branch_labels = None
depends_on = None

COLUMNS = {
    'ix_payments_search_card_last4': ['card_last4', 'created_at', 'id', 'mode'],
    'ix_payments_search_bank_last4': ['bank_last4', 'created_at', 'id', 'mode'],
    'ix_payments_search_amount': ['amount_minor', 'created_at', 'id', 'mode', 'currency'],
    'ix_payments_search_link': ['link_id', 'created_at', 'id', 'mode'],
}
EXPRESSIONS = {
    'ix_payments_search_email': 'buyer_email',
    'ix_payments_search_name': 'buyer_name',
}


def upgrade():
    for name, columns in COLUMNS.items():
        op.create_index(name, 'payments', ['account_id', *columns], unique=False)
    for name, column in EXPRESSIONS.items():
        # The same expression as the models' and the queries' (lower(...), byte-wise on PostgreSQL).
        op.create_index(name, 'payments', [sa.column('account_id'), search_key(sa.column(column)),
                                           sa.column('created_at'), sa.column('id'), sa.column('mode')], unique=False)


def downgrade():
    for name in [*EXPRESSIONS, *COLUMNS]:
        op.drop_index(name, table_name='payments')

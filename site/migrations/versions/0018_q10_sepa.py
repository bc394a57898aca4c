"""q10 sepa: what a SEPA Direct Debit mandate adds to a bank-debit authorization (Q10)

The mandate's scheme ("ach" or "sepa"), the version of the wording the buyer accepted, the SEPA mandate reference
and the IBAN's country. Existing mandates are ACH ones, accepted under the first ACH wording. Payments record a SEPA
debit as method "sepa", which fits the existing String(8) column (widening it would rebuild the payments table on
SQLite, dropping its expression indexes). A link's bank debit follows its currency, so links need no new column.

Revision ID: 0018_q10_sepa
Revises: 0017_search
Create Date: 2026-12-06 18:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0018_q10_sepa'
down_revision = '0017_search'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('mandates', sa.Column('scheme', sa.String(length=8), server_default='ach', nullable=False))
    op.add_column('mandates', sa.Column('text_version', sa.String(length=32), server_default='', nullable=False))
    op.add_column('mandates', sa.Column('reference', sa.String(length=35), server_default='', nullable=False))
    op.add_column('mandates', sa.Column('iban_country', sa.String(length=2), server_default='', nullable=False))
    op.execute("UPDATE mandates SET text_version = 'ach-1' WHERE text_version = ''")


def downgrade():
    # In place (SQLite ≥ 3.35): a batch would reflect `payments`, which `mandates` refers to, and SQLAlchemy
    # can't reflect its expression indexes.
    for name in ('iban_country', 'reference', 'text_version', 'scheme'):
        op.drop_column('mandates', name)

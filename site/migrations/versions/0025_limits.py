"""limits: usage limits and end dates on links (Q5), terms of service consent (Q7), buyer portal (Q11)

Revision ID: 0025_limits
Revises: 0024_tax
Create Date: 2026-12-06 20:30:00

"""
import sqlalchemy as sa
from alembic import op

import kassa.database

# revision identifiers, used by Alembic.
revision = '0025_limits'
down_revision = '0024_tax'
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')  # every int column, as the models map it
WHEN = kassa.database.UTCDateTime(timezone=True)


def upgrade():
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('terms_url', sa.String(length=2000), server_default='', nullable=False))
        batch_op.add_column(sa.Column('portal_key', sa.String(length=32), server_default='', nullable=False))
    with op.batch_alter_table('payment_links', schema=None) as batch_op:
        batch_op.add_column(sa.Column('usage_limit', BIGINT, nullable=True))
        batch_op.add_column(sa.Column('usage_count', BIGINT, server_default='0', nullable=False))
        batch_op.add_column(sa.Column('usage_reserved', BIGINT, server_default='0', nullable=False))
        batch_op.add_column(sa.Column('ends_at', WHEN, nullable=True))
        batch_op.add_column(sa.Column('limit_reached_at', WHEN, nullable=True))
        batch_op.add_column(sa.Column('require_terms', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('terms_url', sa.String(length=2000), nullable=True))
        batch_op.add_column(sa.Column('buyer_can_cancel', sa.Boolean(), server_default=sa.false(), nullable=False))
    # Plain ADD COLUMN, no batch: a batch reflects `payments`, whose expression indexes it can't (B3).
    op.add_column('payment_attempts', sa.Column('holds_seat', sa.Boolean(), server_default=sa.false(),
                                                nullable=False))
    op.add_column('payments', sa.Column('terms_accepted_at', WHEN, nullable=True))
    op.add_column('payments', sa.Column('terms_url', sa.String(length=2000), nullable=True))


def downgrade():
    # In place (SQLite ≥ 3.35), never a batch: rebuilding payments (or a table that refers to it) would lose
    # its expression indexes (B3).
    for name in ('terms_url', 'terms_accepted_at'):
        op.drop_column('payments', name)
    op.drop_column('payment_attempts', 'holds_seat')
    for name in ('buyer_can_cancel', 'terms_url', 'require_terms', 'limit_reached_at', 'ends_at', 'usage_reserved',
                 'usage_count', 'usage_limit'):
        op.drop_column('payment_links', name)
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('portal_key')
        batch_op.drop_column('terms_url')

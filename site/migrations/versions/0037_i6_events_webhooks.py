"""i6 events webhooks: the account event feed (W6, I6)

Revision ID: 0037_i6_events_webhooks
Revises: 0033_w_workflows
Create Date: 2026-12-07 05:30:00

"""
import sqlalchemy as sa

import kassa.database
from alembic import op

# revision identifiers, used by Alembic.
revision = '0037_i6_events_webhooks'
down_revision = '0033_w_workflows'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    op.create_table('account_events',
    sa.Column('id', _ID, nullable=False),
    sa.Column('account_id', _ID, nullable=False),
    sa.Column('type', sa.String(length=40), nullable=False),
    sa.Column('object_type', sa.String(length=20), nullable=False),
    sa.Column('object_id', _ID, nullable=False),
    sa.Column('mode', sa.String(length=8), nullable=False),
    sa.Column('occurred_at', kassa.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_account_events_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account_events'))
    )
    op.create_index('ix_account_events_account_id', 'account_events', ['account_id', 'id'], unique=False)


def downgrade():
    op.drop_index('ix_account_events_account_id', table_name='account_events')
    op.drop_table('account_events')

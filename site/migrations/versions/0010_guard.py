"""card-testing guard (H4): atomic counters replace the event log; attempts remember the slots they hold

Revision ID: 0010_guard
Revises: 0009_jobs
Create Date: 2026-12-06 09:30:00

"""
import sqlalchemy as sa
from alembic import op

import kassa.database

# revision identifiers, used by Alembic.
revision = '0010_guard'
down_revision = '0009_jobs'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('risk_counters',
    sa.Column('scope', sa.String(length=16), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('window_start', kassa.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('generation', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.PrimaryKeyConstraint('scope', 'key', name=op.f('pk_risk_counters'))
    )
    with op.batch_alter_table('payment_attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('risk_hold', sa.JSON(), nullable=True))
    # The old guard's event log: counted successes too (H4); nothing reads it any more.
    with op.batch_alter_table('risk_events', schema=None) as batch_op:
        batch_op.drop_index('ix_risk_link')
        batch_op.drop_index('ix_risk_ip')
        batch_op.drop_index('ix_risk_card')
    op.drop_table('risk_events')


def downgrade():
    op.create_table('risk_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.Column('link_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('card_fingerprint', sa.String(length=64), nullable=True),
    sa.Column('created_at', kassa.database.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_risk_events_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_events'))
    )
    with op.batch_alter_table('risk_events', schema=None) as batch_op:
        batch_op.create_index('ix_risk_card', ['kind', 'card_fingerprint', 'created_at'], unique=False)
        batch_op.create_index('ix_risk_ip', ['kind', 'ip', 'created_at'], unique=False)
        batch_op.create_index('ix_risk_link', ['kind', 'link_id', 'created_at'], unique=False)
    with op.batch_alter_table('payment_attempts', schema=None) as batch_op:
        batch_op.drop_column('risk_hold')
    op.drop_table('risk_counters')

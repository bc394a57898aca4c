"""w triggers: workflows read the account event feed (W6): a cursor per workflow, checkout-abandoned hours, and an
enrollment is one (workflow, feed event) about any object (payment, subscription, dispute, payout, checkout
session); existing enrollments keep their payment as their object

Revision ID: 0041_w_triggers
Revises: 0040_p8_dashboard
Create Date: 2026-12-07 05:40:00

"""
import warnings
from contextlib import contextmanager

import sqlalchemy as sa

from alembic import op

# revision identifiers, used by Alembic.
revision = '0041_w_triggers'
down_revision = '0040_p8_dashboard'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


@contextmanager
def _enrollments_batch():
    """SQLite can't drop NOT NULL or a unique constraint in place: workflow_enrollments is rebuilt there. The batch
    reflects the tables it refers to, payments among them, whose expression indexes SQLite can't reflect."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipped unsupported reflection of expression-based index")
        with op.batch_alter_table('workflow_enrollments') as batch:
            yield batch


def upgrade():
    op.add_column('workflows', sa.Column('event_cursor', _ID, nullable=False, server_default='0'))
    op.add_column('workflows', sa.Column('event_seen', _ID, nullable=False, server_default='0'))
    op.add_column('workflows', sa.Column('event_settled', _ID, nullable=False, server_default='0'))
    op.add_column('workflows', sa.Column('abandon_hours', _ID, nullable=True))
    op.add_column('workflow_enrollments', sa.Column('object_type', sa.String(length=20), nullable=False,
                                                    server_default='payment'))
    op.add_column('workflow_enrollments', sa.Column('object_id', _ID, nullable=True))
    op.add_column('workflow_enrollments', sa.Column('event_id', _ID, nullable=True))
    op.execute("UPDATE workflow_enrollments SET object_id = payment_id")
    # Workflows that are on carry on from the feed's end: the events before were the payment scan's to enroll.
    op.execute("UPDATE workflows SET event_cursor = COALESCE((SELECT MAX(e.id) FROM account_events e "
               "WHERE e.account_id = workflows.account_id), 0), event_seen = event_cursor, event_settled = event_cursor")
    with _enrollments_batch() as batch:
        batch.alter_column('object_id', existing_type=_ID, nullable=False)
        batch.alter_column('payment_id', existing_type=_ID, nullable=True)
        batch.drop_constraint('uq_workflow_enrollments_workflow_id_payment_id_trigger_event', type_='unique')
        batch.create_unique_constraint('uq_workflow_enrollments_workflow_id_event_id', ['workflow_id', 'event_id'])
        batch.create_foreign_key('fk_workflow_enrollments_event_id_account_events', 'account_events',
                                 ['event_id'], ['id'])
    op.create_index('ix_checkout_sessions_open_created', 'checkout_sessions', ['status', 'created_at'], unique=False)
    op.create_index('ix_account_events_object', 'account_events', ['object_type', 'object_id', 'type'], unique=False)


def downgrade():
    op.drop_index('ix_account_events_object', table_name='account_events')
    op.drop_index('ix_checkout_sessions_open_created', table_name='checkout_sessions')
    op.execute("DELETE FROM workflow_enrollments WHERE payment_id IS NULL")
    with _enrollments_batch() as batch:
        batch.drop_constraint('fk_workflow_enrollments_event_id_account_events', type_='foreignkey')
        batch.drop_constraint('uq_workflow_enrollments_workflow_id_event_id', type_='unique')
        batch.create_unique_constraint('uq_workflow_enrollments_workflow_id_payment_id_trigger_event',
                                       ['workflow_id', 'payment_id', 'trigger_event'])
        batch.alter_column('payment_id', existing_type=_ID, nullable=False)
        batch.drop_column('event_id')
        batch.drop_column('object_id')
        batch.drop_column('object_type')
    op.drop_column('workflows', 'abandon_hours')
    op.drop_column('workflows', 'event_settled')
    op.drop_column('workflows', 'event_seen')
    op.drop_column('workflows', 'event_cursor')

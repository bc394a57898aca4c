"""w workflows: workflows, their enrollments (once per workflow, payment and trigger event) and tasks (W1, W2, W6)

Revision ID: 0033_w_workflows
Revises: 0032_g2_periodic_claims
Create Date: 2026-12-07 04:00:00

"""
import sqlalchemy as sa

import kassa.database
from alembic import op

# revision identifiers, used by Alembic.
revision = '0033_w_workflows'
down_revision = '0032_g2_periodic_claims'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    op.create_table('workflows',
    sa.Column('id', _ID, nullable=False),
    sa.Column('account_id', _ID, nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('trigger', sa.String(length=32), nullable=False),
    sa.Column('criteria', sa.JSON(), nullable=False),
    sa.Column('actions', sa.JSON(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('enabled_at', kassa.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('scanned_until', kassa.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('version', _ID, nullable=False),
    sa.Column('created_at', kassa.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', kassa.database.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_workflows_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workflows'))
    )
    op.create_index('ix_workflows_account', 'workflows', ['account_id'], unique=False)
    op.create_table('tasks',
    sa.Column('id', _ID, nullable=False),
    sa.Column('account_id', _ID, nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('payment_id', _ID, nullable=True),
    sa.Column('workflow_id', _ID, nullable=True),
    sa.Column('assignee_id', _ID, nullable=True),
    sa.Column('due_at', kassa.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('done_at', kassa.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', kassa.database.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_tasks_account_id_accounts')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_tasks_payment_id_payments')),
    sa.ForeignKeyConstraint(['workflow_id'], ['workflows.id'], name=op.f('fk_tasks_workflow_id_workflows'),
                            ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['assignee_id'], ['users.id'], name=op.f('fk_tasks_assignee_id_users'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tasks'))
    )
    op.create_index('ix_tasks_account_done', 'tasks', ['account_id', 'done_at'], unique=False)
    op.create_table('workflow_enrollments',
    sa.Column('id', _ID, nullable=False),
    sa.Column('account_id', _ID, nullable=False),
    sa.Column('workflow_id', _ID, nullable=False),
    sa.Column('payment_id', _ID, nullable=False),
    sa.Column('trigger_event', sa.String(length=32), nullable=False),
    sa.Column('workflow_version', _ID, nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('email_id', _ID, nullable=True),
    sa.Column('task_id', _ID, nullable=True),
    sa.Column('enrolled_at', kassa.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('done_at', kassa.database.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_workflow_enrollments_account_id_accounts')),
    sa.ForeignKeyConstraint(['workflow_id'], ['workflows.id'], name=op.f('fk_workflow_enrollments_workflow_id_workflows'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_workflow_enrollments_payment_id_payments')),
    sa.ForeignKeyConstraint(['email_id'], ['email_messages.id'],
                            name=op.f('fk_workflow_enrollments_email_id_email_messages')),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_workflow_enrollments_task_id_tasks')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workflow_enrollments')),
    sa.UniqueConstraint('workflow_id', 'payment_id', 'trigger_event',
                        name=op.f('uq_workflow_enrollments_workflow_id_payment_id_trigger_event'))
    )
    op.create_index('ix_workflow_enrollments_workflow_enrolled', 'workflow_enrollments',
                    ['workflow_id', 'enrolled_at'], unique=False)
    op.create_index('ix_payments_account_succeeded', 'payments', ['account_id', 'succeeded_at'], unique=False)
    op.create_index('ix_payments_account_failed', 'payments', ['account_id', 'failed_at'], unique=False)


def downgrade():
    op.drop_index('ix_payments_account_failed', table_name='payments')
    op.drop_index('ix_payments_account_succeeded', table_name='payments')
    op.drop_index('ix_workflow_enrollments_workflow_enrolled', table_name='workflow_enrollments')
    op.drop_table('workflow_enrollments')
    op.drop_index('ix_tasks_account_done', table_name='tasks')
    op.drop_table('tasks')
    op.drop_index('ix_workflows_account', table_name='workflows')
    op.drop_table('workflows')

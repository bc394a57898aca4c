"""w segments: segments of contacts and their workflow-made members (W3, W8); workflow steps as a sequence
with a wait, each action's outcome, renewals-only and in-segment criteria (W4, W6, W7)

Revision ID: 0038_w_segments
Revises: 0037_i6_events_webhooks
Create Date: 2026-12-07 05:20:00

"""
import sqlalchemy as sa

import kassa.database
from alembic import op

# revision identifiers, used by Alembic.
revision = '0038_w_segments'
down_revision = '0037_i6_events_webhooks'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_AT = kassa.database.UTCDateTime(timezone=True)


def upgrade():
    op.create_table('segments',
    sa.Column('id', _ID, nullable=False),
    sa.Column('account_id', _ID, nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('criteria', sa.JSON(), nullable=False),
    sa.Column('created_at', _AT, nullable=False),
    sa.Column('updated_at', _AT, nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_segments_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_segments'))
    )
    op.create_index('ix_segments_account', 'segments', ['account_id'], unique=False)
    op.create_table('segment_members',
    sa.Column('segment_id', _ID, nullable=False),
    sa.Column('contact_id', _ID, nullable=False),
    sa.Column('account_id', _ID, nullable=False),
    sa.Column('state', sa.String(length=8), nullable=False),
    sa.Column('workflow_id', _ID, nullable=True),
    sa.Column('changed_at', _AT, nullable=False),
    sa.ForeignKeyConstraint(['segment_id'], ['segments.id'], name=op.f('fk_segment_members_segment_id_segments'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_segment_members_contact_id_contacts')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_segment_members_account_id_accounts')),
    sa.ForeignKeyConstraint(['workflow_id'], ['workflows.id'], name=op.f('fk_segment_members_workflow_id_workflows'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('segment_id', 'contact_id', name=op.f('pk_segment_members'))
    )
    op.create_table('workflow_step_runs',
    sa.Column('id', _ID, nullable=False),
    sa.Column('account_id', _ID, nullable=False),
    sa.Column('enrollment_id', _ID, nullable=False),
    sa.Column('step', _ID, nullable=False),
    sa.Column('action', sa.String(length=24), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('attempts', _ID, nullable=False),
    sa.Column('email_id', _ID, nullable=True),
    sa.Column('task_id', _ID, nullable=True),
    sa.Column('at', _AT, nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_workflow_step_runs_account_id_accounts')),
    sa.ForeignKeyConstraint(['enrollment_id'], ['workflow_enrollments.id'],
                            name=op.f('fk_workflow_step_runs_enrollment_id_workflow_enrollments'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['email_id'], ['email_messages.id'],
                            name=op.f('fk_workflow_step_runs_email_id_email_messages')),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_workflow_step_runs_task_id_tasks')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workflow_step_runs')),
    sa.UniqueConstraint('enrollment_id', 'step', name=op.f('uq_workflow_step_runs_enrollment_id_step'))
    )
    op.add_column('workflows', sa.Column('renewals_only', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column('workflows', sa.Column('segment_id', _ID, nullable=True))
    op.add_column('workflow_enrollments', sa.Column('step', _ID, nullable=False, server_default='0'))
    op.add_column('workflow_enrollments', sa.Column('run_at', _AT, nullable=True))


def downgrade():
    op.drop_column('workflow_enrollments', 'run_at')
    op.drop_column('workflow_enrollments', 'step')
    op.drop_column('workflows', 'segment_id')
    op.drop_column('workflows', 'renewals_only')
    op.drop_table('workflow_step_runs')
    op.drop_table('segment_members')
    op.drop_index('ix_segments_account', table_name='segments')
    op.drop_table('segments')

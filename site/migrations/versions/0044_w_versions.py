"""w versions: each version of a workflow as it was saved (W7), so a workflow's page shows every version's trigger,
criteria and steps and which version each enrollment ran; existing workflows get their current version

Revision ID: 0044_w_versions
Revises: 0043_i6_webhook_attempts
Create Date: 2026-12-07 08:30:00

"""
import sqlalchemy as sa

import kassa.database
from alembic import op

# revision identifiers, used by Alembic.
revision = '0044_w_versions'
down_revision = '0043_i6_webhook_attempts'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_AT = kassa.database.UTCDateTime(timezone=True)


def upgrade():
    op.create_table('workflow_versions',
    sa.Column('id', _ID, nullable=False),
    sa.Column('account_id', _ID, nullable=False),
    sa.Column('workflow_id', _ID, nullable=False),
    sa.Column('version', _ID, nullable=False),
    sa.Column('trigger', sa.String(length=32), nullable=False),
    sa.Column('criteria', sa.JSON(), nullable=False),
    sa.Column('actions', sa.JSON(), nullable=False),
    sa.Column('renewals_only', sa.Boolean(), nullable=False),
    sa.Column('segment_id', _ID, nullable=True),
    sa.Column('abandon_hours', _ID, nullable=True),
    sa.Column('created_at', _AT, nullable=False),
    sa.Column('created_by', _ID, nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_workflow_versions_account_id_accounts')),
    sa.ForeignKeyConstraint(['workflow_id'], ['workflows.id'], name=op.f('fk_workflow_versions_workflow_id_workflows'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_workflow_versions_created_by_users'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workflow_versions')),
    sa.UniqueConstraint('workflow_id', 'version', name=op.f('uq_workflow_versions_workflow_id_version'))
    )
    # The versions before this one were not kept: each workflow's current version is its first stored one.
    op.execute("INSERT INTO workflow_versions (account_id, workflow_id, version, trigger, criteria, actions, "
               "renewals_only, segment_id, abandon_hours, created_at) SELECT account_id, id, version, trigger, criteria, "
               "actions, renewals_only, segment_id, abandon_hours, updated_at FROM workflows")


def downgrade():
    op.drop_table('workflow_versions')

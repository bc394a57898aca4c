"""outbox: a lease names the worker that holds it (H6), so a dead worker's work resumes at once

Revision ID: 0009_jobs
Revises: 0008_public
Create Date: 2026-12-06 10:00:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0009_jobs'
down_revision = '0008_public'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locked_by', sa.String(length=200), nullable=True))


def downgrade():
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.drop_column('locked_by')

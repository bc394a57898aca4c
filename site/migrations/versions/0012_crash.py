"""disputes: the answer sent to the processor (H13 one answer per dispute; H5 an answer whose reply was lost)

Revision ID: 0012_crash
Revises: 0011_auth
Create Date: 2026-12-06 09:30:00

"""
import sqlalchemy as sa
from alembic import op

import kassa.database

# revision identifiers, used by Alembic.
revision = '0012_crash'
down_revision = '0011_auth'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('disputes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('answer', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('answer_sent_at', kassa.database.UTCDateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('disputes', schema=None) as batch_op:
        batch_op.drop_column('answer_sent_at')
        batch_op.drop_column('answer')

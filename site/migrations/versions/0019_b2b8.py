"""failed checkout attempts: a declined card's risk signal on its failed payment (B2)

Revision ID: 0019_b2b8
Revises: 0018_q10_sepa
Create Date: 2026-12-06 17:40:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0019_b2b8'
down_revision = '0018_q10_sepa'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('payments') as batch:
        # Only a declined checkout attempt has one; every other payment keeps NULL.
        batch.add_column(sa.Column('risk_level', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('risk_scope', sa.String(length=16), nullable=True))


def downgrade():
    # A plain DROP COLUMN (SQLite ≥ 3.35): a batch would rebuild `payments` and lose its expression indexes (B3).
    op.drop_column('payments', 'risk_scope')
    op.drop_column('payments', 'risk_level')

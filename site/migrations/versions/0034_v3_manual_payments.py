"""v3 manual payments: a manual payment's way (bank transfer, cash, cheque, other) and reference (V3)

Revision ID: 0034_v3_manual_payments
Revises: 0033_w_workflows
Create Date: 2026-12-07 05:20:00

"""
import sqlalchemy as sa

from alembic import op

# revision identifiers, used by Alembic.
revision = '0034_v3_manual_payments'
down_revision = '0033_w_workflows'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('payments', sa.Column('manual_method', sa.String(length=16), nullable=True))
    op.add_column('payments', sa.Column('manual_reference', sa.String(length=120), nullable=True))


def downgrade():
    op.drop_column('payments', 'manual_reference')
    op.drop_column('payments', 'manual_method')

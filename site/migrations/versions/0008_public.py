"""payment_links: a per-link key in the signed test URL, so the merchant can revoke it (H7)

Revision ID: 0008_public
Revises: 0007_subscriptions_next_charge
Create Date: 2026-12-06 09:30:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0008_public'
down_revision = '0007_subscriptions_next_charge'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('payment_links', schema=None) as batch_op:
        batch_op.add_column(sa.Column('test_link_key', sa.String(length=32), nullable=True))


def downgrade():
    with op.batch_alter_table('payment_links', schema=None) as batch_op:
        batch_op.drop_column('test_link_key')

"""fields: custom fields on payment links, and the buyer's answers on payments (Q8)

Revision ID: 0022_fields
Revises: 0021_b9_subscription_clock
Create Date: 2026-12-06 20:20:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0022_fields'
down_revision = '0021_b9_subscription_clock'
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    # Plain ADD COLUMN: payments (and payment_links, which payments refer to) are never rebuilt by a batch.
    op.add_column('payment_links', sa.Column('custom_fields', sa.JSON(), nullable=True))
    op.add_column('payments', sa.Column('custom_fields', sa.JSON(), nullable=True))
    op.create_table(
        'payment_field_values',
        sa.Column('id', BIGINT, nullable=False),
        sa.Column('payment_id', BIGINT, nullable=False),
        sa.Column('account_id', BIGINT, nullable=False),
        sa.Column('position', BIGINT, nullable=False),
        sa.Column('label', sa.String(length=50), nullable=False),
        sa.Column('value', sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_payment_field_values_account_id_accounts')),
        sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_payment_field_values_payment_id_payments'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_field_values')),
    )
    op.create_index(op.f('ix_payment_field_values_payment_id'), 'payment_field_values', ['payment_id'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_payment_field_values_payment_id'), table_name='payment_field_values')
    op.drop_table('payment_field_values')
    # In place (SQLite ≥ 3.35), never a batch: rebuilding payments would lose its expression indexes (B3).
    op.drop_column('payments', 'custom_fields')
    op.drop_column('payment_links', 'custom_fields')

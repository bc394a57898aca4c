"""i2 api checkout sessions and exports: an export is requested by a user or by an API key (exactly one of the
two), a checkout session may be opened by an API key, and payment links and checkout sessions keep Stripe-shaped
metadata

Revision ID: 0042_i2_api_checkout_exports
Revises: 0041_w_triggers
Create Date: 2026-12-07 08:30:00

"""
import warnings
from contextlib import contextmanager

import sqlalchemy as sa

from alembic import op

# revision identifiers, used by Alembic.
revision = '0042_i2_api_checkout_exports'
down_revision = '0041_w_triggers'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


@contextmanager
def _exports_batch():
    """SQLite can't drop NOT NULL or add a check in place: exports is rebuilt there."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipped unsupported reflection of expression-based index")
        with op.batch_alter_table('exports') as batch:
            yield batch


def upgrade():
    with _exports_batch() as batch:
        batch.add_column(sa.Column('api_key_id', _ID, nullable=True))
        batch.alter_column('user_id', existing_type=_ID, nullable=True)
        batch.create_foreign_key('fk_exports_api_key_id_api_keys', 'api_keys', ['api_key_id'], ['id'])
        batch.create_check_constraint(op.f('ck_exports_one_requester'), '(user_id IS NULL) <> (api_key_id IS NULL)')
    # checkout_sessions in place: a nullable column. SQLite adds a column's foreign key only inline (REFERENCES).
    if op.get_bind().dialect.name == 'sqlite':
        op.execute("ALTER TABLE checkout_sessions ADD COLUMN api_key_id INTEGER REFERENCES api_keys (id)")
    else:
        op.add_column('checkout_sessions', sa.Column('api_key_id', _ID, nullable=True))
        op.create_foreign_key('fk_checkout_sessions_api_key_id_api_keys', 'checkout_sessions', 'api_keys',
                              ['api_key_id'], ['id'])
    op.add_column('checkout_sessions', sa.Column('metadata_json', sa.JSON(), nullable=True))
    op.add_column('payment_links', sa.Column('metadata_json', sa.JSON(), nullable=True))


def downgrade():
    op.drop_column('payment_links', 'metadata_json')
    op.drop_column('checkout_sessions', 'metadata_json')
    if op.get_bind().dialect.name != 'sqlite':
        op.drop_constraint('fk_checkout_sessions_api_key_id_api_keys', 'checkout_sessions', type_='foreignkey')
    op.drop_column('checkout_sessions', 'api_key_id')
    op.execute("DELETE FROM exports WHERE user_id IS NULL")
    with _exports_batch() as batch:
        batch.drop_constraint(op.f('ck_exports_one_requester'), type_='check')
        batch.drop_constraint('fk_exports_api_key_id_api_keys', type_='foreignkey')
        batch.alter_column('user_id', existing_type=_ID, nullable=False)
        batch.drop_column('api_key_id')

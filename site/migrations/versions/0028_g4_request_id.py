"""g4 request id: outbox_messages.request_id (G4)

The id of the request (or of the job, and so of the request) that queued a message, so the worker's log lines
for the job name the request that caused it. NULL for messages queued by the tick and for older rows.

Revision ID: 0028_g4_request_id
Revises: 0027_v1_invoices
Create Date: 2026-12-06 23:40:00

"""
import sqlalchemy as sa

from alembic import op

# revision identifiers, used by Alembic.
revision = '0028_g4_request_id'
down_revision = '0027_v1_invoices'
branch_labels = None
depends_on = None


def upgrade():
    # In place (never a batch): a nullable column with no default is a catalogue change on both databases.
    op.add_column('outbox_messages', sa.Column('request_id', sa.String(length=128), nullable=True))


def downgrade():
    op.drop_column('outbox_messages', 'request_id')

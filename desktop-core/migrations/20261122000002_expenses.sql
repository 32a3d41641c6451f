-- Expenses read from receipts. Amounts are integers of the currency's minor units. The receipt
-- image is stored beside the database, content-addressed: receipts/<first two hex>/<sha256>.

create table receipt_images (
    sha256 text primary key check (length(sha256) = 64),
    media_type text not null,
    byte_size integer not null,
    width integer not null,
    height integer not null,
    created_at integer not null
);

create table expenses (
    id text primary key,
    requester_id text not null references users (id),
    -- The expense-claim ticket; drafts may not have one yet.
    ticket_id text references tickets (id),
    status text not null default 'draft'
        check (status in ('draft', 'submitted', 'approved', 'rejected')),
    merchant text,
    -- YYYY-MM-DD, the day on the receipt.
    spent_on text,
    currency text not null check (length(currency) = 3),
    amount_minor integer check (amount_minor >= 0),
    subtotal_minor integer check (subtotal_minor >= 0),
    tax_minor integer check (tax_minor >= 0),
    category text not null default 'other',
    -- JSON: [{description, quantity, amount_minor}].
    items text not null default '[]',
    note text,
    image_sha256 text references receipt_images (sha256),
    -- The file name the receipt came from.
    source_name text,
    -- JSON: what was read from the image (lines with their boxes; per field, its lines and
    -- confidence), so the review can show where each value came from.
    reading text,
    decided_by text references users (id),
    decided_at integer,
    decision_note text,
    demo integer not null default 0,
    created_at integer not null,
    updated_at integer not null,
    submitted_at integer,
    version integer not null default 1,
    deleted_at integer,
    check (status = 'draft' or (ticket_id is not null and merchant is not null
                                and spent_on is not null and amount_minor is not null)),
    check ((status in ('approved', 'rejected')) = (decided_at is not null))
);
create index expenses_spent_idx on expenses (spent_on, id) where deleted_at is null;
create index expenses_ticket_idx on expenses (ticket_id) where deleted_at is null;
create index expenses_requester_idx on expenses (requester_id, status) where deleted_at is null;

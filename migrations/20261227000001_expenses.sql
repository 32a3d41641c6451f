-- Expenses on the server: what the desktop submits on an expense-claim ticket, and the
-- approver's decision. Drafts stay on the desktop; a submitted expense never changes again except
-- by that decision (corrections are new records), which a trigger enforces below every write
-- path. Amounts are integers of the currency's minor units. The receipt image lives in the blob
-- store under its SHA-256 (`PUT /api/v1/blobs/{sha256}`); the row keeps its address and metadata.

create table expenses (
    id uuid primary key,
    tenant_id uuid not null references tenants on delete cascade,
    ticket_id uuid not null,
    status text not null constraint expenses_status_check
        check (status in ('draft', 'submitted', 'approved', 'rejected')),
    merchant text not null constraint expenses_merchant_check
        check (length(merchant) between 1 and 200),
    spent_on date not null,
    currency text not null constraint expenses_currency_check check (currency ~ '^[A-Z]{3}$'),
    amount_minor bigint not null constraint expenses_amount_check check (amount_minor >= 0),
    subtotal_minor bigint constraint expenses_subtotal_check check (subtotal_minor >= 0),
    tax_minor bigint constraint expenses_tax_check check (tax_minor >= 0),
    category text not null,
    -- [{description, quantity, amount_minor}]
    items jsonb not null default '[]' constraint expenses_items_check
        check (jsonb_typeof(items) = 'array'),
    note text constraint expenses_note_check check (length(note) <= 20000),
    receipt_sha256 text constraint expenses_receipt_sha256_check
        check (receipt_sha256 ~ '^[0-9a-f]{64}$'),
    receipt_media_type text,
    receipt_size bigint constraint expenses_receipt_size_check check (receipt_size >= 0),
    submitted_by uuid not null references users,
    submitted_at timestamptz not null,
    decided_by uuid references users,
    decided_at timestamptz,
    -- Why it was rejected (or a note on the approval).
    reason text constraint expenses_reason_check check (length(reason) <= 20000),
    created_at timestamptz not null,
    updated_at timestamptz not null,
    version bigint not null default 1,
    constraint expenses_ticket_fkey foreign key (tenant_id, ticket_id)
        references tickets (tenant_id, id) on delete cascade,
    constraint expenses_receipt_check check (
        (receipt_sha256 is null) = (receipt_media_type is null)
        and (receipt_sha256 is null) = (receipt_size is null)),
    constraint expenses_decision_check check (
        (status in ('approved', 'rejected')) = (decided_at is not null)
        and (decided_at is null) = (decided_by is null))
);
create index expenses_ticket_idx on expenses (ticket_id, created_at, id);
create index expenses_receipt_idx on expenses (tenant_id, receipt_sha256)
    where receipt_sha256 is not null;

alter table expenses enable row level security;
alter table expenses force row level security;
create policy expenses_tenant on expenses
    using (tenant_id = tallydesk_tenant()) with check (tenant_id = tallydesk_tenant());
grant select, insert, update, delete on expenses to tallydesk_app;

-- Once submitted, only the decision moves: submitted → approved or rejected, once.
create function expenses_immutable() returns trigger
    language plpgsql
    as $$
    begin
        if old.status <> 'draft' and (
            old.status <> 'submitted' or new.status not in ('approved', 'rejected')
            or (new.id, new.tenant_id, new.ticket_id, new.merchant, new.spent_on, new.currency,
                new.amount_minor, new.subtotal_minor, new.tax_minor, new.category, new.items,
                new.note, new.receipt_sha256, new.receipt_media_type, new.receipt_size,
                new.submitted_by, new.submitted_at, new.created_at)
               is distinct from
               (old.id, old.tenant_id, old.ticket_id, old.merchant, old.spent_on, old.currency,
                old.amount_minor, old.subtotal_minor, old.tax_minor, old.category, old.items,
                old.note, old.receipt_sha256, old.receipt_media_type, old.receipt_size,
                old.submitted_by, old.submitted_at, old.created_at))
        then
            raise exception 'expense % is %: a submitted expense never changes', old.id, old.status
                using errcode = 'check_violation', constraint = 'expenses_immutable';
        end if;
        return new;
    end
    $$;

create trigger expenses_immutable before update on expenses
    for each row execute function expenses_immutable();

-- Expenses enter the change log, visible like their ticket.
alter table change_log drop constraint change_log_entity_check;
alter table change_log add constraint change_log_entity_check
    check (entity in ('ticket', 'comment', 'activity', 'customer', 'member', 'expense'));

create or replace function change_log_record() returns trigger
    language plpgsql
    as $$
    declare
        r record;
        operation text := case tg_op when 'DELETE' then 'delete' else 'upsert' end;
    begin
        if tg_op = 'DELETE' then
            r := old;
        else
            r := new;
        end if;
        case tg_table_name
            when 'tickets' then
                perform change_log_append(r.tenant_id, 'ticket', r.id, operation, r.id,
                                          r.requester_id, false);
            when 'comments' then
                perform change_log_append(r.tenant_id, 'comment', r.id, operation, r.ticket_id,
                                          change_log_requester(r.tenant_id, r.ticket_id), r.internal);
            when 'activity' then
                perform change_log_append(r.tenant_id, 'activity', r.id, operation, r.ticket_id,
                                          change_log_requester(r.tenant_id, r.ticket_id), r.internal);
            when 'customers' then
                perform change_log_append(r.tenant_id, 'customer', r.id, operation, null, null, false);
            when 'memberships' then
                perform change_log_append(r.tenant_id, 'member', r.user_id, operation, null, null, false);
            when 'expenses' then
                perform change_log_append(r.tenant_id, 'expense', r.id, operation, r.ticket_id,
                                          change_log_requester(r.tenant_id, r.ticket_id), false);
        end case;
        return null;
    end
    $$;

create trigger expenses_change_log after insert or delete on expenses
    for each row execute function change_log_record();
create trigger expenses_change_log_update after update on expenses
    for each row when (old.* is distinct from new.*) execute function change_log_record();

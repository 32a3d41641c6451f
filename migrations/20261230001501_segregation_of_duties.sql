-- Segregation of duties for expenses (issue 15, "Money"):
-- * who uploaded each blob, per tenant, so an expense names only a receipt its submitter uploaded
--   (`blobs.uploaded_by` keeps the first uploader only; the same bytes may come from several);
-- * a tenant may require two approvals, by different approvers, above an amount;
-- * each approval is kept, so the first of two is visible while the expense stays submitted.

create table blob_uploads (
    tenant_id uuid not null,
    sha256 text not null,
    uploaded_by uuid not null references users,
    uploaded_at timestamptz not null,
    primary key (tenant_id, sha256, uploaded_by),
    constraint blob_uploads_blob_fkey foreign key (tenant_id, sha256)
        references blobs (tenant_id, sha256) on delete cascade
);

-- The first uploader of every blob stored so far. `blobs` forces row-level security, which
-- would hide its rows from the migrating role: lift it for this statement only.
alter table blobs no force row level security;
insert into blob_uploads (tenant_id, sha256, uploaded_by, uploaded_at)
select tenant_id, sha256, uploaded_by, uploaded_at from blobs;
alter table blobs force row level security;

alter table blob_uploads enable row level security;
alter table blob_uploads force row level security;
create policy blob_uploads_tenant on blob_uploads
    using (tenant_id = tallydesk_tenant()) with check (tenant_id = tallydesk_tenant());
grant select, insert on blob_uploads to tallydesk_app;

-- Above this amount, in the minor units of the expense's own currency, two approvals.
alter table tenants add column dual_approval_above_minor bigint
    constraint tenants_dual_approval_check
        check (dual_approval_above_minor between 0 and 100000000000000);

-- Approvals as given; append-only for the app role, like the activity trail.
create table expense_approvals (
    tenant_id uuid not null references tenants on delete cascade,
    expense_id uuid not null references expenses on delete cascade,
    approved_by uuid not null references users,
    approved_at timestamptz not null,
    primary key (expense_id, approved_by)
);

alter table expense_approvals enable row level security;
alter table expense_approvals force row level security;
create policy expense_approvals_tenant on expense_approvals
    using (tenant_id = tallydesk_tenant()) with check (tenant_id = tallydesk_tenant());
grant select, insert on expense_approvals to tallydesk_app;

-- A submitted expense may now also be touched (`updated_at`, `version`) while it stays
-- submitted, when a first approval of two is recorded: that change reaches sync like any other.
-- Everything else stays as before: only the decision moves it, once.
create or replace function expenses_immutable() returns trigger
    language plpgsql
    as $$
    begin
        if old.status <> 'draft' and (
            old.status <> 'submitted'
            or new.status not in ('submitted', 'approved', 'rejected')
            or (new.status = 'submitted'
                and (new.decided_by, new.decided_at, new.reason)
                    is distinct from (old.decided_by, old.decided_at, old.reason))
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

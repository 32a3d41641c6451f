-- Where each tenant's change log stood, noted once a day by every server. Compaction drops the
-- tombstones at or below the newest mark older than the retention (TALLYDESK_TOMBSTONE_DAYS), so
-- the log needs no timestamp of its own. Only the server's owner connection reads and writes it.
create table change_log_marks (
    tenant_id uuid not null references tenants on delete cascade,
    at timestamptz not null,
    seq bigint not null,
    primary key (tenant_id, at)
);
alter table change_log_marks enable row level security;
alter table change_log_marks force row level security;
create policy change_log_marks_tenant on change_log_marks
    using (tenant_id = tallydesk_tenant()) with check (tenant_id = tallydesk_tenant());

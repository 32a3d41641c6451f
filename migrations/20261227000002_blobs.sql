-- Blobs (receipt images) uploaded to the object store, per tenant: what each is, for serving it
-- back. The bytes live in the object store under `<tenant>/<xx>/<sha256>`; a row here is
-- written only after they are stored, so a row means the blob can be read.

create table blobs (
    tenant_id uuid not null references tenants on delete cascade,
    sha256 text not null constraint blobs_sha256_check check (sha256 ~ '^[0-9a-f]{64}$'),
    media_type text not null,
    size bigint not null constraint blobs_size_check check (size >= 0),
    uploaded_by uuid not null references users,
    uploaded_at timestamptz not null,
    primary key (tenant_id, sha256)
);

alter table blobs enable row level security;
alter table blobs force row level security;
create policy blobs_tenant on blobs
    using (tenant_id = tallydesk_tenant()) with check (tenant_id = tallydesk_tenant());
grant select, insert on blobs to tallydesk_app;

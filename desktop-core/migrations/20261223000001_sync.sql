-- Syncing with a server. One store syncs with one (server, tenant) at a time: its scope. The
-- records of that tenant live in the ordinary tables; `sync_base` keeps each record as the
-- server last sent it, so the local view can always be rebuilt as the server's state with the
-- still-pending intents of `outbox` replayed over it. Switching to another server or tenant
-- clears the records that came from the old scope and pulls the new one from the start; the
-- outbox keeps every scope's intents (tagged), so nothing unsent is lost by switching.

create table sync_state (
    id integer primary key check (id = 1),
    -- This store as a sync client (UUIDv7), made once.
    client_id text not null,
    -- The scope the synced records belong to; null before the first pull.
    server_url text,
    tenant_id text,
    -- The change log position pulled up to.
    cursor integer not null default 0,
    last_synced_at integer
);

-- Intents made while signed in, in the order made; `seq` numbers them for the server.
create table outbox (
    seq integer primary key autoincrement,
    server_url text not null,
    tenant_id text not null,
    -- shared::sync::Intent as JSON ({op, args}).
    intent text not null,
    -- The record the intent is about (entity, id), to surface a rejection on it.
    entity text not null,
    record_id text not null,
    created_at integer not null,
    state text not null default 'pending' check (state in ('pending', 'rejected')),
    code text,
    message text
);
create index outbox_scope_idx on outbox (server_url, tenant_id, state, seq);
create index outbox_record_idx on outbox (record_id);

-- Each synced record as the server last sent it (its REST shape, JSON).
create table sync_base (
    entity text not null,
    id text not null,
    data text not null,
    primary key (entity, id)
);

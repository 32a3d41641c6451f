-- SLA policies and business calendars (settings that sync), and the alerts already raised so
-- an event is announced once, even across restarts.

create table calendars (
    id text primary key,
    name text not null,
    time_zone text not null,
    -- JSON: {mon: [["09:00", "17:00"]], …}
    weekly text not null,
    -- JSON: ["YYYY-MM-DD", …]
    holidays text not null default '[]',
    demo integer not null default 0,
    created_at integer not null,
    updated_at integer not null,
    version integer not null default 1,
    deleted_at integer
);

create table sla_policies (
    id text primary key,
    name text not null,
    position integer not null default 0,
    active integer not null default 1,
    -- JSON arrays, or null for any.
    priorities text,
    categories text,
    customer_ids text,
    first_response_minutes integer,
    next_response_minutes integer,
    resolution_minutes integer,
    business_hours integer not null default 0,
    calendar_id text references calendars (id),
    warn_minutes integer,
    demo integer not null default 0,
    created_at integer not null,
    updated_at integer not null,
    version integer not null default 1,
    deleted_at integer
);
create index sla_policies_position_idx on sla_policies (position, created_at) where deleted_at is null;

create table sla_alerts (
    ticket_id text not null references tickets (id),
    target text not null,
    kind text not null check (kind in ('at_risk', 'breached')),
    -- When the event happened (not when it was announced).
    at integer not null,
    announced_at integer not null,
    primary key (ticket_id, target, kind, at)
);

-- SLAs: business calendars, policies, each ticket's derived SLA row and the events the monitor
-- records once each.
--
-- Deadlines are derived from a ticket's history by the SLA clock (tallydesk-shared), never kept
-- as a counter: `ticket_sla` is recomputed in the transaction of every write that changes a
-- ticket's SLA inputs, and for every open ticket of a tenant when its policies or calendars
-- change.

-- Business hours by weekday and holidays, in one IANA time zone.
create table calendars (
    id uuid primary key,
    tenant_id uuid not null references tenants on delete cascade,
    name text not null constraint calendars_name_check check (length(name) between 1 and 100),
    time_zone text not null,
    -- {"mon": [["09:00", "17:00"]], …}, checked by the server before it is stored.
    weekly jsonb not null,
    holidays date[] not null default '{}',
    created_at timestamptz not null,
    updated_at timestamptz not null,
    version bigint not null default 1,
    constraint calendars_tenant_id_key unique (tenant_id, id)
);
create index calendars_tenant_idx on calendars (tenant_id, lower(name), id);

-- Which tickets a policy applies to (null lists match every ticket) and its targets in minutes.
-- The first active policy in (position, created_at, id) order that matches a ticket applies.
create table sla_policies (
    id uuid primary key,
    tenant_id uuid not null references tenants on delete cascade,
    name text not null constraint sla_policies_name_check check (length(name) between 1 and 100),
    position bigint not null constraint sla_policies_position_check check (position >= 0),
    active boolean not null,
    priorities text[],
    categories text[],
    customer_ids uuid[],
    first_response_minutes integer
        constraint sla_policies_first_response_check check (first_response_minutes between 1 and 525600),
    next_response_minutes integer
        constraint sla_policies_next_response_check check (next_response_minutes between 1 and 525600),
    resolution_minutes integer
        constraint sla_policies_resolution_check check (resolution_minutes between 1 and 525600),
    business_hours boolean not null,
    calendar_id uuid,
    warn_minutes integer
        constraint sla_policies_warn_check check (warn_minutes between 0 and 525600),
    created_at timestamptz not null,
    updated_at timestamptz not null,
    version bigint not null default 1,
    -- A calendar in use cannot be deleted (the server answers 409 and names the policy).
    constraint sla_policies_calendar_fkey foreign key (tenant_id, calendar_id)
        references calendars (tenant_id, id),
    constraint sla_policies_business_hours_check check (not business_hours or calendar_id is not null)
);
create index sla_policies_order_idx on sla_policies (tenant_id, position, created_at, id);
create index sla_policies_calendar_idx on sla_policies (tenant_id, calendar_id)
    where calendar_id is not null;

-- Each ticket's SLA as derived at `computed_at`: only what time alone does not change is stored,
-- and `sla_state_at` tells the state at any later instant from it. No row: no policy applies.
create table ticket_sla (
    ticket_id uuid primary key,
    tenant_id uuid not null,
    policy_id uuid not null,
    -- The most urgent state among the targets apart from at risk and breached: 'running' when
    -- some target's clock runs, else 'paused' when some target is paused, else 'met'.
    idle_state text not null constraint ticket_sla_idle_state_check
        check (idle_state in ('running', 'paused', 'met')),
    -- The earliest instant a running target is (or will be) at risk.
    at_risk_at timestamptz,
    -- The earliest deadline of a running target: it is breached from then on.
    due_at timestamptz,
    -- The earliest breach that has happened.
    breached_at timestamptz,
    -- "Breaching soon" order: the earliest breach or deadline of a target not yet met.
    deadline timestamptz,
    -- When the monitor next has an at-risk or breach event to record (may be past: record now).
    next_change_at timestamptz,
    computed_at timestamptz not null,
    constraint ticket_sla_ticket_fkey foreign key (tenant_id, ticket_id)
        references tickets (tenant_id, id) on delete cascade
);
create index ticket_sla_deadline_idx on ticket_sla (tenant_id, deadline);
create index ticket_sla_next_change_idx on ticket_sla (next_change_at)
    where next_change_at is not null;

-- The ticket's SLA state at `at` from its derived row: breached, at_risk, running, paused or met.
create function sla_state_at(
    idle_state text, at_risk_at timestamptz, due_at timestamptz, breached_at timestamptz,
    at timestamptz
) returns text
    language sql immutable
    as $$
        select case
            when breached_at is not null or due_at <= at then 'breached'
            when at_risk_at <= at then 'at_risk'
            else idle_state
        end
    $$;

-- At-risk and breach events, each recorded once per ticket and target by the SLA monitor.
create table sla_events (
    tenant_id uuid not null,
    ticket_id uuid not null,
    target text not null constraint sla_events_target_check
        check (target in ('first_response', 'next_response', 'resolution')),
    kind text not null constraint sla_events_kind_check check (kind in ('at_risk', 'breached')),
    policy_id uuid not null,
    -- When it happened by the SLA clock; recorded_at is when the monitor saw it.
    at timestamptz not null,
    recorded_at timestamptz not null,
    constraint sla_events_once primary key (ticket_id, target, kind),
    constraint sla_events_ticket_fkey foreign key (tenant_id, ticket_id)
        references tickets (tenant_id, id) on delete cascade
);

-- The SLA monitor's actor in the audit trail: it signs `sla.at_risk` and `sla.breached` entries.
-- No issuer is called this, so nobody can sign in as it.
insert into users (id, issuer, subject, name, created_at)
values ('00000000-0000-7000-8000-000000000001', 'urn:tallydesk', 'sla-monitor', 'SLA monitor', now());

-- Row-level security, forced like every tenant table: requests see their tenant only.
do $$
declare
    t text;
begin
    foreach t in array array['calendars', 'sla_policies', 'sla_events']
    loop
        execute format('alter table %I enable row level security', t);
        execute format('alter table %I force row level security', t);
        execute format('create policy %I on %I using (tenant_id = tallydesk_tenant())'
                       ' with check (tenant_id = tallydesk_tenant())', t || '_tenant', t);
    end loop;
end
$$;

-- ticket_sla is enabled but not forced: requests (tallydesk_app) see their tenant only, while
-- the owner, which runs the SLA monitor, finds due rows across tenants in one indexed query. It
-- then handles each ticket in a transaction scoped to that ticket's tenant.
alter table ticket_sla enable row level security;
create policy ticket_sla_tenant on ticket_sla
    using (tenant_id = tallydesk_tenant()) with check (tenant_id = tallydesk_tenant());

grant select, insert, update, delete on calendars, sla_policies, ticket_sla to tallydesk_app;
grant select on sla_events to tallydesk_app;
grant execute on function sla_state_at(text, timestamptz, timestamptz, timestamptz, timestamptz)
    to tallydesk_app;

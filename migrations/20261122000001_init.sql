-- Tallydesk server schema.
--
-- Tenant isolation is enforced by Postgres: every tenant-owned table has row-level security,
-- forced even for its owner. Requests run as `tallydesk_app`, which owns nothing and cannot
-- bypass RLS, and each request's transaction names its tenant and user with
-- set_config('tallydesk.tenant_id' / 'tallydesk.user_id', ..., true).

do $$
begin
    create role tallydesk_app nologin;
exception when duplicate_object or unique_violation then
    null; -- roles are cluster-wide: another database of this cluster made it first
end
$$;

grant tallydesk_app to current_user;

-- The tenant and user of the current transaction, or null when none is set.
create function tallydesk_tenant() returns uuid
    language sql stable
    as $$ select nullif(current_setting('tallydesk.tenant_id', true), '')::uuid $$;

create function tallydesk_user() returns uuid
    language sql stable
    as $$ select nullif(current_setting('tallydesk.user_id', true), '')::uuid $$;

-- The caller's email, set only when their identity provider verified it.
create function tallydesk_verified_email() returns text
    language sql stable
    as $$ select nullif(current_setting('tallydesk.verified_email', true), '') $$;

-- People, identified by their issuer and subject. Not tenant-owned.
create table users (
    id uuid primary key,
    issuer text not null,
    subject text not null,
    email text,
    email_verified boolean not null default false,
    name text,
    created_at timestamptz not null default now(),
    constraint users_issuer_subject_key unique (issuer, subject)
);
create index users_email_idx on users (email);

-- One row once the first user has claimed the installation (and become admin of "Default").
create table installation (
    singleton boolean primary key default true constraint installation_singleton check (singleton),
    claimed_at timestamptz not null,
    claimed_by uuid not null references users
);

create table tenants (
    id uuid primary key,
    name text not null constraint tenants_name_check check (length(name) between 1 and 100),
    categories text[] not null
        default array['general', 'hardware', 'software', 'access', 'billing', 'expense'],
    created_at timestamptz not null default now()
);

-- Counters handed out inside the writing transaction; the row lock orders concurrent writers.
create table tenant_counters (
    tenant_id uuid primary key references tenants on delete cascade,
    last_ticket_number bigint not null default 0
);

create table memberships (
    tenant_id uuid not null references tenants on delete cascade,
    user_id uuid not null references users on delete cascade,
    role text not null constraint memberships_role_check
        check (role in ('requester', 'observer', 'agent', 'admin')),
    created_at timestamptz not null default now(),
    primary key (tenant_id, user_id)
);
create index memberships_user_idx on memberships (user_id);

create table invitations (
    id uuid primary key,
    tenant_id uuid not null references tenants on delete cascade,
    email text not null,
    role text not null constraint invitations_role_check
        check (role in ('requester', 'observer', 'agent', 'admin')),
    invited_by uuid not null references users,
    created_at timestamptz not null default now(),
    accepted_at timestamptz,
    accepted_by uuid references users
);
create unique index invitations_pending_email_key on invitations (tenant_id, email)
    where accepted_at is null;
create index invitations_email_idx on invitations (email) where accepted_at is null;

create table customers (
    id uuid primary key,
    tenant_id uuid not null references tenants on delete cascade,
    name text not null,
    email text,
    phone text,
    company text,
    notes text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint customers_tenant_id_key unique (tenant_id, id)
);
create index customers_tenant_name_idx on customers (tenant_id, lower(name), id);

create table tickets (
    id uuid primary key,
    tenant_id uuid not null references tenants on delete cascade,
    number bigint not null,
    title text not null constraint tickets_title_check check (length(title) between 1 and 200),
    description text not null default ''
        constraint tickets_description_check check (length(description) <= 20000),
    status text not null default 'open' constraint tickets_status_check
        check (status in ('open', 'in_progress', 'on_hold', 'resolved', 'closed')),
    priority text not null default 'medium' constraint tickets_priority_check
        check (priority in ('low', 'medium', 'high', 'urgent')),
    priority_rank smallint generated always as (
        case priority when 'low' then 0 when 'medium' then 1 when 'high' then 2 else 3 end
    ) stored,
    category text not null default 'general',
    requester_id uuid not null references users,
    assignee_id uuid,
    customer_id uuid,
    hold_reason text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    first_responded_at timestamptz,
    resolved_at timestamptz,
    closed_at timestamptz,
    version bigint not null default 1,
    constraint tickets_number_key unique (tenant_id, number),
    constraint tickets_tenant_id_key unique (tenant_id, id),
    constraint tickets_hold_reason_check check ((status = 'on_hold') = (hold_reason is not null)),
    constraint tickets_assignee_fkey foreign key (tenant_id, assignee_id)
        references memberships (tenant_id, user_id) on delete set null (assignee_id),
    constraint tickets_customer_fkey foreign key (tenant_id, customer_id)
        references customers (tenant_id, id) on delete set null (customer_id)
);
create index tickets_created_idx on tickets (tenant_id, created_at, id);
create index tickets_updated_idx on tickets (tenant_id, updated_at, id);
create index tickets_priority_idx on tickets (tenant_id, priority_rank, id);
create index tickets_status_idx on tickets (tenant_id, status, created_at, id);
create index tickets_assignee_idx on tickets (tenant_id, assignee_id, created_at, id);
create index tickets_requester_idx on tickets (tenant_id, requester_id, created_at, id);
create index tickets_customer_idx on tickets (tenant_id, customer_id) where customer_id is not null;

create table comments (
    id uuid primary key,
    tenant_id uuid not null,
    ticket_id uuid not null,
    author_id uuid not null references users,
    body text not null constraint comments_body_check check (length(body) between 1 and 20000),
    internal boolean not null default false,
    created_at timestamptz not null default now(),
    constraint comments_ticket_fkey foreign key (tenant_id, ticket_id)
        references tickets (tenant_id, id) on delete cascade
);
create index comments_ticket_idx on comments (ticket_id, created_at, id);

-- The audit trail. Kept when its ticket is deleted.
create table activity (
    id uuid primary key,
    tenant_id uuid not null references tenants on delete cascade,
    ticket_id uuid,
    actor_id uuid not null references users,
    action text not null,
    field text,
    before jsonb,
    after jsonb,
    internal boolean not null default false,
    at timestamptz not null default now()
);
create index activity_ticket_idx on activity (tenant_id, ticket_id, at, id);

-- Full-text search documents: everything, and what a requester may see (no internal notes).
--
-- They live apart from `tickets` because Postgres will not use a GIN index under row-level
-- security (the @@ operator is not leakproof). The request role has no privilege on this table:
-- it reaches it only through tallydesk_search(), which filters by the transaction's tenant.
create table ticket_search (
    ticket_id uuid primary key references tickets on delete cascade,
    tenant_id uuid not null,
    search_all tsvector not null,
    search_public tsvector not null
);
create index ticket_search_all_idx on ticket_search using gin (search_all);
create index ticket_search_public_idx on ticket_search using gin (search_public);

create function tickets_search_document(ticket uuid, include_internal boolean) returns tsvector
    language sql stable
    as $$
        select setweight(to_tsvector('english', t.title), 'A')
            || setweight(to_tsvector('english', t.description), 'B')
            || setweight(to_tsvector('english', coalesce(
                (select string_agg(c.body, ' ') from comments c
                  where c.ticket_id = t.id and (include_internal or not c.internal)), '')), 'C')
          from tickets t where t.id = ticket
    $$;

create function ticket_search_refresh(ticket uuid) returns void
    language sql volatile security definer set search_path = public, pg_temp
    as $$
        insert into ticket_search (ticket_id, tenant_id, search_all, search_public)
        select t.id, t.tenant_id, tickets_search_document(t.id, true), tickets_search_document(t.id, false)
          from tickets t where t.id = ticket
        on conflict (ticket_id) do update
            set search_all = excluded.search_all, search_public = excluded.search_public
    $$;

create function tickets_refresh_search() returns trigger
    language plpgsql
    as $$
    begin
        perform ticket_search_refresh(new.id);
        return null;
    end
    $$;

create trigger tickets_search_refresh
    after insert or update of title, description on tickets
    for each row execute function tickets_refresh_search();

create function comments_refresh_ticket_search() returns trigger
    language plpgsql
    as $$
    begin
        if tg_op = 'DELETE' then
            perform ticket_search_refresh(old.ticket_id);
        else
            perform ticket_search_refresh(new.ticket_id);
        end if;
        return null;
    end
    $$;

create trigger comments_search_refresh
    after insert or update or delete on comments
    for each row execute function comments_refresh_ticket_search();

-- The ids of the current tenant's tickets matching a search; `internal` searches internal notes.
create function tallydesk_search(query text, internal boolean) returns setof uuid
    language sql stable security definer set search_path = public, pg_temp
    as $$
        -- Two branches, so each can use its own GIN index.
        select ticket_id from ticket_search
         where internal and tenant_id = tallydesk_tenant()
           and search_all @@ websearch_to_tsquery('english', query)
        union all
        select ticket_id from ticket_search
         where not internal and tenant_id = tallydesk_tenant()
           and search_public @@ websearch_to_tsquery('english', query)
    $$;

revoke all on function ticket_search_refresh(uuid) from public;
grant execute on function ticket_search_refresh(uuid) to tallydesk_app;
revoke all on function tallydesk_search(text, boolean) from public;
grant execute on function tallydesk_search(text, boolean) to tallydesk_app;

-- Row-level security.
alter table tenants enable row level security;
alter table tenants force row level security;
create policy tenants_member on tenants for select
    using (id = tallydesk_tenant()
        or exists (select 1 from memberships m where m.tenant_id = tenants.id and m.user_id = tallydesk_user()));
create policy tenants_create on tenants for insert with check (id = tallydesk_tenant());
create policy tenants_update on tenants for update using (id = tallydesk_tenant());

alter table memberships enable row level security;
alter table memberships force row level security;
create policy memberships_tenant on memberships
    using (tenant_id = tallydesk_tenant()) with check (tenant_id = tallydesk_tenant());
create policy memberships_own on memberships for select using (user_id = tallydesk_user());

-- Invitees find their pending invitations across tenants by their verified email.
create policy invitations_invitee on invitations for select
    using (email = tallydesk_verified_email() and accepted_at is null);

do $$
declare
    t text;
begin
    foreach t in array array['tenant_counters', 'invitations', 'customers', 'tickets', 'comments', 'activity']
    loop
        execute format('alter table %I enable row level security', t);
        execute format('alter table %I force row level security', t);
        execute format('create policy %I on %I using (tenant_id = tallydesk_tenant())'
                       ' with check (tenant_id = tallydesk_tenant())', t || '_tenant', t);
    end loop;
end
$$;

grant select, insert, update on users to tallydesk_app;
grant select, insert on installation to tallydesk_app;
grant select, insert, update on tenants to tallydesk_app;
grant select, insert, update on tenant_counters to tallydesk_app;
grant select, insert, update, delete on memberships, invitations, customers, tickets, comments to tallydesk_app;
grant select, insert on activity to tallydesk_app;

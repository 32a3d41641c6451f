-- Sync: the per-tenant change log the desktop pulls, and the record of pushed mutations.
--
-- Every write to a synced record (tickets, comments, a ticket's activity, customers,
-- memberships) appends to `change_log` in the writing transaction, through one trigger function
-- and one append function, so no write path can forget it. The `seq` comes from the tenant's
-- counter row (`update … returning`): the row lock is held until commit, so writers of one
-- tenant commit in `seq` order and a reader never sees seq n+1 without seq n. (A serial column
-- would not do: a slow transaction can commit a lower number after a reader moved past it.)
--
-- The log keeps one row per record: a new write moves the record's row to the new `seq`. A
-- client pulling from cursor C gets every record changed after C, each once, as it is now.
-- Deletes leave a tombstone (`op = 'delete'`); compaction drops old tombstones and raises the
-- tenant's horizon, and a client whose cursor is below it must start again from 0.

alter table tenant_counters
    add column last_change_seq bigint not null default 0,
    add column change_log_horizon bigint not null default 0;

create table change_log (
    tenant_id uuid not null,
    entity text not null constraint change_log_entity_check
        check (entity in ('ticket', 'comment', 'activity', 'customer', 'member')),
    -- The record's id; for members, the user's id.
    entity_id uuid not null,
    seq bigint not null,
    op text not null constraint change_log_op_check check (op in ('upsert', 'delete')),
    -- What visibility needs without reading the record: the ticket a record belongs to, that
    -- ticket's requester, and whether it is about an internal note.
    ticket_id uuid,
    requester_id uuid,
    internal boolean not null default false,
    primary key (tenant_id, entity, entity_id)
);
create unique index change_log_seq_key on change_log (tenant_id, seq);

alter table change_log enable row level security;
alter table change_log force row level security;
create policy change_log_tenant on change_log
    using (tenant_id = tallydesk_tenant()) with check (tenant_id = tallydesk_tenant());
grant select, insert, update on change_log to tallydesk_app;

-- The requester of a ticket, also once it is deleted (its tombstone keeps it).
create function change_log_requester(tenant uuid, ticket uuid) returns uuid
    language sql stable
    as $$
        select coalesce(
            (select requester_id from tickets where id = ticket),
            (select requester_id from change_log
              where tenant_id = tenant and entity = 'ticket' and entity_id = ticket))
    $$;

-- Appends one change: the next seq of the tenant, the record's row moved to it.
create function change_log_append(
    tenant uuid, kind text, record uuid, operation text, ticket uuid, requester uuid,
    is_internal boolean
) returns void
    language plpgsql
    as $$
    declare
        next_seq bigint;
    begin
        update tenant_counters set last_change_seq = last_change_seq + 1
         where tenant_id = tenant
        returning last_change_seq into next_seq;
        if next_seq is null then
            -- No counter: the tenant itself is being deleted, and its log with it.
            return;
        end if;
        insert into change_log (tenant_id, entity, entity_id, seq, op, ticket_id, requester_id, internal)
        values (tenant, kind, record, next_seq, operation, ticket, requester, is_internal)
        on conflict (tenant_id, entity, entity_id) do update
            set seq = excluded.seq, op = excluded.op, ticket_id = excluded.ticket_id,
                requester_id = coalesce(excluded.requester_id, change_log.requester_id),
                internal = excluded.internal;
    end
    $$;

create function change_log_record() returns trigger
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
        end case;
        return null;
    end
    $$;

create trigger tickets_change_log after insert or delete on tickets
    for each row execute function change_log_record();
create trigger tickets_change_log_update after update on tickets
    for each row when (old.* is distinct from new.*) execute function change_log_record();
create trigger comments_change_log after insert or delete on comments
    for each row execute function change_log_record();
create trigger comments_change_log_update after update on comments
    for each row when (old.* is distinct from new.*) execute function change_log_record();
create trigger customers_change_log after insert or delete on customers
    for each row execute function change_log_record();
create trigger customers_change_log_update after update on customers
    for each row when (old.* is distinct from new.*) execute function change_log_record();
create trigger memberships_change_log after insert or delete on memberships
    for each row execute function change_log_record();
create trigger memberships_change_log_update after update on memberships
    for each row when (old.* is distinct from new.*) execute function change_log_record();
-- A ticket's trail syncs with the ticket; tenant-level entries (customers, members) do not.
create trigger activity_change_log after insert on activity
    for each row when (new.ticket_id is not null) execute function change_log_record();

-- One NOTIFY per tenant per committing transaction, sent at commit (so only if it commits):
-- the deferred trigger fires for each appended row, and only the row holding the tenant's
-- last seq speaks.
create function change_log_notify() returns trigger
    language plpgsql
    as $$
    begin
        if new.seq = (select last_change_seq from tenant_counters where tenant_id = new.tenant_id) then
            perform pg_notify('tallydesk_changes',
                              json_build_object('tenant_id', new.tenant_id, 'seq', new.seq)::text);
        end if;
        return null;
    end
    $$;

create constraint trigger change_log_notify after insert or update on change_log
    deferrable initially deferred
    for each row execute function change_log_notify();

-- The ticket version an activity entry was written at, so a sync update made on an older
-- version can tell which fields someone else changed since.
alter table activity add column ticket_version bigint;

create function activity_ticket_version() returns trigger
    language plpgsql
    as $$
    begin
        if new.ticket_id is not null and new.ticket_version is null then
            new.ticket_version := (select version from tickets where id = new.ticket_id);
        end if;
        return new;
    end
    $$;

create trigger activity_ticket_version before insert on activity
    for each row execute function activity_ticket_version();

-- What exists already enters the log once, oldest first.
insert into change_log (tenant_id, entity, entity_id, seq, op, ticket_id, requester_id, internal)
select tenant_id, entity, id, row_number() over (partition by tenant_id order by kind, at, id),
       'upsert', ticket_id, requester_id, internal
  from (
    select tenant_id, 'member' as entity, user_id as id, null::uuid as ticket_id,
           null::uuid as requester_id, false as internal, 0 as kind, created_at as at
      from memberships
    union all
    select tenant_id, 'customer', id, null, null, false, 1, created_at from customers
    union all
    select tenant_id, 'ticket', id, id, requester_id, false, 2, created_at from tickets
    union all
    select c.tenant_id, 'comment', c.id, c.ticket_id, t.requester_id, c.internal, 3, c.created_at
      from comments c join tickets t on t.id = c.ticket_id
    union all
    select a.tenant_id, 'activity', a.id, a.ticket_id, t.requester_id, a.internal, 4, a.at
      from activity a left join tickets t on t.id = a.ticket_id
     where a.ticket_id is not null
  ) existing;

update tenant_counters c
   set last_change_seq = coalesce((select max(seq) from change_log l where l.tenant_id = c.tenant_id), 0);

-- Each pushed mutation's outcome, recorded in the transaction that applied (or refused) it,
-- so a mutation sent again gets the same answer and changes nothing.
create table sync_mutations (
    tenant_id uuid not null references tenants on delete cascade,
    client_id uuid not null,
    seq bigint not null,
    user_id uuid not null references users,
    status text not null constraint sync_mutations_status_check
        check (status in ('applied', 'rejected')),
    code text,
    message text,
    recorded_at timestamptz not null,
    primary key (tenant_id, client_id, seq)
);

alter table sync_mutations enable row level security;
alter table sync_mutations force row level security;
create policy sync_mutations_tenant on sync_mutations
    using (tenant_id = tallydesk_tenant()) with check (tenant_id = tallydesk_tenant());
grant select, insert, update on sync_mutations to tallydesk_app;

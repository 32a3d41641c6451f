-- The change log's seq, allocated once per transaction and tenant.
--
-- Updating the tenant's counter row for every appended change made a transaction that writes
-- many records (a seed, an import) quadratic: each update of one row in one transaction walks
-- the chain of that row's earlier versions. Now a transaction's first change to a tenant's log
-- takes the counter row (the lock that orders the tenant's writers, held until commit), later
-- ones count on in a transaction-local setting, and at commit the counter is set to the last
-- seq handed out, in the same deferred trigger that NOTIFYs. Settings roll back with savepoints
-- like the rows do, so a rolled-back mutation hands its numbers out again.

create or replace function change_log_append(
    tenant uuid, kind text, record uuid, operation text, ticket uuid, requester uuid,
    is_internal boolean
) returns void
    language plpgsql
    as $$
    declare
        setting text := 'tallydesk.change_seq_' || replace(tenant::text, '-', '');
        next_seq bigint := nullif(current_setting(setting, true), '')::bigint + 1;
    begin
        if next_seq is null then
            update tenant_counters set last_change_seq = last_change_seq + 1
             where tenant_id = tenant
            returning last_change_seq into next_seq;
            if next_seq is null then
                -- No counter: the tenant itself is being deleted, and its log with it.
                return;
            end if;
        end if;
        perform set_config(setting, next_seq::text, true);
        insert into change_log (tenant_id, entity, entity_id, seq, op, ticket_id, requester_id, internal)
        values (tenant, kind, record, next_seq, operation, ticket, requester, is_internal)
        on conflict (tenant_id, entity, entity_id) do update
            set seq = excluded.seq, op = excluded.op, ticket_id = excluded.ticket_id,
                requester_id = coalesce(excluded.requester_id, change_log.requester_id),
                internal = excluded.internal;
    end
    $$;

-- At commit, for the row holding the last seq this transaction gave the tenant: the counter
-- takes that seq, and one NOTIFY tells every server instance.
create or replace function change_log_notify() returns trigger
    language plpgsql
    as $$
    declare
        last_seq bigint := nullif(current_setting(
            'tallydesk.change_seq_' || replace(new.tenant_id::text, '-', ''), true), '')::bigint;
    begin
        if new.seq = last_seq then
            -- The request may have moved on to another scope (sign-in joins several tenants).
            perform set_config('tallydesk.tenant_id', new.tenant_id::text, true);
            update tenant_counters set last_change_seq = new.seq where tenant_id = new.tenant_id;
            perform pg_notify('tallydesk_changes',
                              json_build_object('tenant_id', new.tenant_id, 'seq', new.seq)::text);
        end if;
        return null;
    end
    $$;

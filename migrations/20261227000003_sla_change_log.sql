-- SLA policies and business calendars enter the change log, so desktops keep the SLA settings
-- they may read (agents, admins and observers; not requesters) up to date offline.

alter table change_log drop constraint change_log_entity_check;
alter table change_log add constraint change_log_entity_check
    check (entity in ('ticket', 'comment', 'activity', 'customer', 'member', 'expense',
                      'sla_policy', 'calendar'));

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
            when 'sla_policies' then
                perform change_log_append(r.tenant_id, 'sla_policy', r.id, operation, null, null, false);
            when 'calendars' then
                perform change_log_append(r.tenant_id, 'calendar', r.id, operation, null, null, false);
        end case;
        return null;
    end
    $$;

create trigger sla_policies_change_log after insert or delete on sla_policies
    for each row execute function change_log_record();
create trigger sla_policies_change_log_update after update on sla_policies
    for each row when (old.* is distinct from new.*) execute function change_log_record();
create trigger calendars_change_log after insert or delete on calendars
    for each row execute function change_log_record();
create trigger calendars_change_log_update after update on calendars
    for each row when (old.* is distinct from new.*) execute function change_log_record();

-- What exists already enters the log once, after each tenant's head: calendars first, since
-- policies refer to them.
insert into change_log (tenant_id, entity, entity_id, seq, op)
select e.tenant_id, e.entity, e.id, c.last_change_seq + e.n, 'upsert'
  from (
    select tenant_id, entity, id,
           row_number() over (partition by tenant_id order by kind, created_at, id) as n
      from (
        select tenant_id, 'calendar' as entity, id, 0 as kind, created_at from calendars
        union all
        select tenant_id, 'sla_policy', id, 1, created_at from sla_policies
      ) settings
  ) e
  join tenant_counters c on c.tenant_id = e.tenant_id;

update tenant_counters c
   set last_change_seq = greatest(c.last_change_seq,
       coalesce((select max(seq) from change_log l where l.tenant_id = c.tenant_id), 0));

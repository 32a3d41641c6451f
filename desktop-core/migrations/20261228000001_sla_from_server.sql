-- SLA settings pulled from a server are kept apart from the local workspace's own: while signed
-- in, only the server's apply; back in local mode, the local ones do again.
alter table calendars add column from_server integer not null default 0;
alter table sla_policies add column from_server integer not null default 0;

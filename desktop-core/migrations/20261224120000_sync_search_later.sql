-- A pulled page's tickets reach the search index once, with the pull's last page, rather than
-- one rewrite of a ticket's search row per comment and per page: while a page is applied
-- (`sync_state.search_deferred`, set and cleared inside its transaction, so no other writer
-- ever sees it set), the triggers note the tickets whose text changed in `search_stale`
-- instead, and the last page rebuilds their rows from the tickets and comments as they are. The
-- list is committed with each page: a pull that fails half way rebuilds them at once, and one
-- cut short by a crash leaves them to the next pull's last page; every pulled comment is
-- searchable once a pull completes.

alter table sync_state add column search_deferred integer not null default 0;

-- Tickets (by tickets.rowid, as ticket_search) whose search row waits to be rebuilt. The triggers
-- check before they insert: an `or ignore` in a trigger body gives way to the conflict handling
-- of the statement that fired it (the pull's upserts abort).
create table search_stale (ticket_rowid integer primary key);

drop trigger tickets_search_insert;
create trigger tickets_search_insert after insert on tickets
  when not exists (select 1 from sync_state where id = 1 and search_deferred)
begin
    insert into ticket_search (rowid, title, description, comments)
    values (new.rowid, new.title, new.description, '');
end;
create trigger tickets_search_insert_later after insert on tickets
  when exists (select 1 from sync_state where id = 1 and search_deferred)
begin
    insert into search_stale (ticket_rowid)
    select new.rowid where not exists (select 1 from search_stale where ticket_rowid = new.rowid);
end;

drop trigger tickets_search_update;
create trigger tickets_search_update after update of title, description on tickets
  when not exists (select 1 from sync_state where id = 1 and search_deferred)
begin
    update ticket_search set title = new.title, description = new.description
     where rowid = new.rowid;
end;
create trigger tickets_search_update_later after update of title, description on tickets
  when exists (select 1 from sync_state where id = 1 and search_deferred)
begin
    insert into search_stale (ticket_rowid)
    select new.rowid where not exists (select 1 from search_stale where ticket_rowid = new.rowid);
end;

drop trigger comments_search_insert;
create trigger comments_search_insert after insert on comments
  when not exists (select 1 from sync_state where id = 1 and search_deferred)
begin
    update ticket_search
       set comments = comments || ' ' || new.body
     where rowid = (select rowid from tickets where id = new.ticket_id);
end;
create trigger comments_search_insert_later after insert on comments
  when exists (select 1 from sync_state where id = 1 and search_deferred)
begin
    insert into search_stale (ticket_rowid)
    select t.rowid from tickets t
     where t.id = new.ticket_id
       and not exists (select 1 from search_stale s where s.ticket_rowid = t.rowid);
end;
-- A pulled comment whose text changed: its ticket's row is rebuilt too.
create trigger comments_search_update_later after update of body, ticket_id on comments
  when exists (select 1 from sync_state where id = 1 and search_deferred)
begin
    insert into search_stale (ticket_rowid)
    select t.rowid from tickets t
     where t.id in (old.ticket_id, new.ticket_id)
       and not exists (select 1 from search_stale s where s.ticket_rowid = t.rowid);
end;

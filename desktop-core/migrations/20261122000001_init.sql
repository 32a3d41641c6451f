-- The desktop's local store. Records carry the ids (UUIDv7), versions and tombstones
-- (deleted_at) that syncing with a server needs. Times are microseconds since the Unix epoch.

create table workspace (
    id text primary key,
    name text not null,
    -- The person using this app; in local mode the admin of this workspace.
    user_id text not null,
    created_at integer not null
);

create table users (
    id text primary key,
    name text not null,
    email text,
    role text not null check (role in ('requester', 'observer', 'agent', 'admin')),
    demo integer not null default 0,
    version integer not null default 1,
    updated_at integer not null,
    deleted_at integer
);

create table customers (
    id text primary key,
    name text not null,
    email text,
    phone text,
    company text,
    notes text,
    demo integer not null default 0,
    created_at integer not null,
    updated_at integer not null,
    version integer not null default 1,
    deleted_at integer
);
create index customers_name_idx on customers (name collate nocase) where deleted_at is null;

create table tickets (
    id text primary key,
    number integer not null unique,
    title text not null check (length(title) between 1 and 200),
    description text not null default '',
    status text not null default 'open'
        check (status in ('open', 'in_progress', 'on_hold', 'resolved', 'closed')),
    priority text not null default 'medium' check (priority in ('low', 'medium', 'high', 'urgent')),
    priority_rank integer not null generated always as (
        case priority when 'low' then 0 when 'medium' then 1 when 'high' then 2 else 3 end
    ) stored,
    category text not null default 'general',
    requester_id text not null references users (id),
    assignee_id text references users (id),
    customer_id text references customers (id),
    hold_reason text,
    demo integer not null default 0,
    created_at integer not null,
    updated_at integer not null,
    first_responded_at integer,
    resolved_at integer,
    closed_at integer,
    version integer not null default 1,
    deleted_at integer,
    check ((status = 'on_hold') = (hold_reason is not null))
);
create index tickets_created_idx on tickets (created_at, id) where deleted_at is null;
create index tickets_updated_idx on tickets (updated_at, id) where deleted_at is null;
create index tickets_priority_idx on tickets (priority_rank, id) where deleted_at is null;
create index tickets_status_idx on tickets (status, created_at) where deleted_at is null;
create index tickets_assignee_idx on tickets (assignee_id, created_at) where deleted_at is null;
create index tickets_customer_idx on tickets (customer_id) where deleted_at is null;

create table comments (
    id text primary key,
    ticket_id text not null references tickets (id),
    author_id text not null references users (id),
    body text not null,
    internal integer not null default 0,
    demo integer not null default 0,
    created_at integer not null,
    version integer not null default 1,
    deleted_at integer
);
create index comments_ticket_idx on comments (ticket_id, created_at);

create table activity (
    id text primary key,
    ticket_id text,
    actor_id text not null,
    action text not null,
    field text,
    before text,
    after text,
    internal integer not null default 0,
    demo integer not null default 0,
    at integer not null
);
create index activity_ticket_idx on activity (ticket_id, at, id);

-- Full-text search over a ticket's title, description and comments; rowid = tickets.rowid.
-- Words are matched by prefix (search as you type), so they are not stemmed.
create virtual table ticket_search using fts5(
    title, description, comments, tokenize = 'unicode61 remove_diacritics 2'
);

create trigger tickets_search_insert after insert on tickets begin
    insert into ticket_search (rowid, title, description, comments)
    values (new.rowid, new.title, new.description, '');
end;

create trigger tickets_search_update after update of title, description on tickets begin
    update ticket_search set title = new.title, description = new.description
     where rowid = new.rowid;
end;

create trigger tickets_search_delete after delete on tickets begin
    delete from ticket_search where rowid = old.rowid;
end;

create trigger comments_search_insert after insert on comments begin
    update ticket_search
       set comments = comments || ' ' || new.body
     where rowid = (select rowid from tickets where id = new.ticket_id);
end;

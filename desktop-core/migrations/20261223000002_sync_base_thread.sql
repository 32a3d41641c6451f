-- A ticket's comments in the server's copy, found without a scan: a pulled ticket brings in the
-- comments that were pulled before it.
create index sync_base_comment_ticket_idx on sync_base (json_extract(data, '$.ticket_id'))
    where entity = 'comment';

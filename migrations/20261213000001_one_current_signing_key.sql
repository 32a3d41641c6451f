-- At most one signing key of the built-in issuer is current (not retired). Rotations already
-- take an advisory lock; this makes the database refuse a second current key whatever the path.
create unique index issuer_signing_keys_one_current on issuer_signing_keys ((retired_at is null))
    where retired_at is null;

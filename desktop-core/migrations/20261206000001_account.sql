-- The server this desktop is connected to, and the non-secret facts of its sign-in, so the app
-- restarts signed in. Tokens are never here: the refresh token is in the OS keychain.
create table account (
    id integer primary key check (id = 1),
    server_url text not null,
    -- The server's sign-in settings (AuthProvider list), JSON.
    providers text not null,
    -- The signed-in session (issuer, subject, user, tenants, active tenant), JSON; null when
    -- signed out.
    session text,
    updated_at integer not null
);

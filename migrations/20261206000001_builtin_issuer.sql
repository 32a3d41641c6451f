-- The server's built-in OpenID Connect issuer: signing keys, local accounts, browser sessions,
-- authorization codes, grants (refresh-token families) and login rate limits.
--
-- None of these tables is tenant-owned, so none has row-level security. Secrets handed to
-- clients (codes, refresh tokens, session and CSRF cookies, invitation links) are stored only as
-- SHA-256 hashes; the signing keys' private halves are stored as they are, since the server signs
-- with them.

-- Token signing keys. The newest key not retired signs; retired keys stay published (JWKS) and
-- accepted until the tokens they signed have expired.
create table issuer_signing_keys (
    kid text primary key,
    algorithm text not null constraint issuer_signing_keys_algorithm_check check (algorithm = 'ES256'),
    private_key_pem text not null,
    public_jwk jsonb not null,
    created_at timestamptz not null,
    retired_at timestamptz
);

-- Accounts of the built-in issuer. Their `users` row has issuer = the public URL and
-- subject = the user id.
create table local_accounts (
    user_id uuid primary key references users on delete cascade,
    email text not null constraint local_accounts_email_key unique,
    password_hash text not null,
    created_at timestamptz not null,
    password_changed_at timestamptz not null
);

-- A browser signed in at the issuer (its cookie holds the secret).
create table issuer_sessions (
    id uuid primary key,
    secret_hash bytea not null constraint issuer_sessions_secret_key unique,
    user_id uuid not null references users on delete cascade,
    auth_time timestamptz not null,
    expires_at timestamptz not null,
    ended_at timestamptz
);

-- An authorization request waiting for the login form, bound to the browser by a CSRF cookie.
create table issuer_interactions (
    id uuid primary key,
    csrf_hash bytea not null,
    request jsonb not null,
    expires_at timestamptz not null
);
create index issuer_interactions_expiry_idx on issuer_interactions (expires_at);

-- What a client may keep asking tokens for: one per code exchange, shared by the refresh
-- tokens that rotate from it (the "family"). Revoking it ends them all.
create table issuer_grants (
    id uuid primary key,
    user_id uuid not null references users on delete cascade,
    client_id text not null,
    session_id uuid references issuer_sessions on delete set null,
    scope text not null,
    auth_time timestamptz not null,
    created_at timestamptz not null,
    revoked_at timestamptz
);
create index issuer_grants_user_idx on issuer_grants (user_id) where revoked_at is null;
create index issuer_grants_session_idx on issuer_grants (session_id) where revoked_at is null;

create table issuer_codes (
    code_hash bytea primary key,
    client_id text not null,
    redirect_uri text not null,
    user_id uuid not null references users on delete cascade,
    session_id uuid references issuer_sessions on delete set null,
    code_challenge text not null,
    nonce text,
    scope text not null,
    auth_time timestamptz not null,
    expires_at timestamptz not null,
    used_at timestamptz,
    -- The grant its exchange made, revoked when the code is replayed.
    grant_id uuid references issuer_grants on delete set null
);
create index issuer_codes_expiry_idx on issuer_codes (expires_at);

create table issuer_refresh_tokens (
    token_hash bytea primary key,
    grant_id uuid not null references issuer_grants on delete cascade,
    created_at timestamptz not null,
    expires_at timestamptz not null,
    -- Set when it was exchanged for its successor; using it again revokes the grant.
    used_at timestamptz
);
create index issuer_refresh_tokens_grant_idx on issuer_refresh_tokens (grant_id);

-- Failed sign-ins per account (email) and per client address, in fixed windows. Kept in the
-- database so that several server instances count together.
create table issuer_login_failures (
    kind text not null constraint issuer_login_failures_kind_check check (kind in ('account', 'address')),
    key text not null,
    window_start timestamptz not null,
    failures integer not null,
    primary key (kind, key)
);

-- One-time links that accept an invitation with a new (or existing) Tallydesk account. The
-- tenant and email are copied here because `invitations` is visible only inside its tenant.
create table invitation_links (
    invitation_id uuid primary key references invitations on delete cascade,
    token_hash bytea not null constraint invitation_links_token_key unique,
    tenant_id uuid not null references tenants on delete cascade,
    email text not null,
    created_at timestamptz not null,
    used_at timestamptz
);

grant select, insert, update, delete on issuer_signing_keys, local_accounts, issuer_sessions,
    issuer_interactions, issuer_grants, issuer_codes, issuer_refresh_tokens,
    issuer_login_failures, invitation_links to tallydesk_app;

-- Single sign-on: the company identity providers the server is an OpenID Connect relying party
-- of (the client secret stays in the server's environment: only the variable's name is kept),
-- the sign-ins in flight (state, nonce and PKCE verifier, bound to the browser), and which
-- upstream identity is which account.
CREATE TABLE identity_providers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    issuer TEXT NOT NULL,
    client_id TEXT NOT NULL,
    secret_env TEXT NOT NULL,
    allowed_domains TEXT NOT NULL,
    create_accounts INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE sso_states (
    state_hash TEXT PRIMARY KEY,
    binding_hash TEXT NOT NULL,
    idp_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    verifier TEXT NOT NULL,
    next TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE TABLE sso_identities (
    idp_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (idp_id, subject)
);

-- The OpenID provider: ID token signing keys (public JWK in clear, private key sealed under
-- MOGPLEX_SECRETS_KEY), what an ID token needs from its authorization request (nonce, when the
-- user signed in), and whether an account's email is verified.
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    private_sealed TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    activates_at INTEGER NOT NULL
);
CREATE TABLE oidc_auth (
    code_hash TEXT PRIMARY KEY,
    family_id TEXT,
    nonce TEXT,
    auth_time INTEGER,
    expires_at INTEGER NOT NULL
);
CREATE INDEX oidc_auth_family ON oidc_auth(family_id);
ALTER TABLE users ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 0;

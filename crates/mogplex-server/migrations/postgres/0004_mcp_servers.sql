CREATE TABLE mcp_servers (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    enabled BIGINT NOT NULL DEFAULT 1,
    config TEXT NOT NULL,
    secrets TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (user_id, name)
);

CREATE TABLE models (
    slug TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    display_name TEXT NOT NULL,
    spec TEXT NOT NULL,
    upstream_kind TEXT NOT NULL,
    upstream_base_url TEXT,
    upstream_key_env TEXT,
    upstream_model TEXT,
    created_at BIGINT NOT NULL
);
CREATE TABLE plans (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
CREATE TABLE plan_models (
    plan_id TEXT NOT NULL REFERENCES plans(id) ON DELETE CASCADE,
    model_slug TEXT NOT NULL REFERENCES models(slug) ON DELETE CASCADE,
    PRIMARY KEY (plan_id, model_slug)
);
ALTER TABLE users ADD COLUMN plan_id TEXT REFERENCES plans(id) ON DELETE SET NULL;

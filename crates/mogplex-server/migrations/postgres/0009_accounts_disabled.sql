-- Accounts an administrator disabled (`user disable`), and the index behind the runs-per-day cap.
ALTER TABLE users ADD COLUMN disabled_at BIGINT;
CREATE INDEX runs_user_created ON runs(user_id, created_at);

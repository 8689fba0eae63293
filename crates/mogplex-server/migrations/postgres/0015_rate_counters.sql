-- The gateway's per-token request counts (db/throttle.rs, `rate_take`), apart from the password
-- and device-code throttles: UNLOGGED, so counting a request writes no WAL and its commit waits
-- for no flush. A crash of PostgreSQL empties the table (the current minute's counts restart).
CREATE UNLOGGED TABLE rate_counters (
    key TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    count BIGINT NOT NULL
);

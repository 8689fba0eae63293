-- Nothing to do on SQLite: one process serves a SQLite file, and the gateway counts its requests
-- in that process's memory (gateway.rs, `Limiter`). PostgreSQL gets the `rate_counters` table.
SELECT 1;

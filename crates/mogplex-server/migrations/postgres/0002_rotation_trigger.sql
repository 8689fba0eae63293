-- Nothing to do on PostgreSQL. On SQLite this version adds the columns and the trigger that let
-- one UPDATE rotate a refresh token; PostgreSQL does the same with a data-modifying CTE
-- (src/db/oauth.rs), so the version exists here only to keep both backends numbered alike.
SELECT 1;

ALTER TABLE refresh_tokens ADD COLUMN next_access_hash TEXT;
ALTER TABLE refresh_tokens ADD COLUMN next_access_expires INTEGER;
ALTER TABLE refresh_tokens ADD COLUMN next_refresh_hash TEXT;
ALTER TABLE refresh_tokens ADD COLUMN next_refresh_expires INTEGER;
CREATE TRIGGER refresh_rotation AFTER UPDATE OF used_at ON refresh_tokens
WHEN OLD.used_at IS NULL AND NEW.used_at IS NOT NULL AND NEW.next_refresh_hash IS NOT NULL
BEGIN
    INSERT INTO access_tokens (token_hash, family_id, user_id, scope, expires_at)
        SELECT NEW.next_access_hash, f.id, f.user_id, f.scope, NEW.next_access_expires
        FROM token_families f WHERE f.id = NEW.family_id;
    INSERT INTO refresh_tokens (token_hash, family_id, created_at, expires_at)
        VALUES (NEW.next_refresh_hash, NEW.family_id, NEW.used_at, NEW.next_refresh_expires);
END;

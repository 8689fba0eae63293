-- A refresh may narrow the scope of the access token it issues (the refresh token keeps the
-- sign-in's scope), and a lost refresh response may be retried with the previous token within a
-- grace interval: the rotation records the scope it issued, and the trigger uses it.
ALTER TABLE refresh_tokens ADD COLUMN next_access_scope TEXT;
DROP TRIGGER refresh_rotation;
CREATE TRIGGER refresh_rotation AFTER UPDATE OF used_at ON refresh_tokens
WHEN OLD.used_at IS NULL AND NEW.used_at IS NOT NULL AND NEW.next_refresh_hash IS NOT NULL
BEGIN
    INSERT INTO access_tokens (token_hash, family_id, user_id, scope, expires_at)
        SELECT NEW.next_access_hash, f.id, f.user_id, COALESCE(NEW.next_access_scope, f.scope), NEW.next_access_expires
        FROM token_families f WHERE f.id = NEW.family_id;
    INSERT INTO refresh_tokens (token_hash, family_id, created_at, expires_at)
        VALUES (NEW.next_refresh_hash, NEW.family_id, NEW.used_at, NEW.next_refresh_expires);
END;

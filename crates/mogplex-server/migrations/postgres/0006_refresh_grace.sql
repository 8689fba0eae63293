-- A lost refresh response may be retried with the previous token within a grace interval: each
-- rotated token records its successors (SQLite has had these columns since version 2), so the
-- retry can retire the unseen successor and issue a fresh one.
ALTER TABLE refresh_tokens ADD COLUMN next_access_hash TEXT;
ALTER TABLE refresh_tokens ADD COLUMN next_refresh_hash TEXT;
ALTER TABLE refresh_tokens ADD COLUMN next_access_scope TEXT;

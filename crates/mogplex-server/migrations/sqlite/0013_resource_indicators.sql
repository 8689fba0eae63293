-- RFC 8707 resource indicators: an authorization code, a device grant and the sign-in (token
-- family) they start may be bound to one resource (an absolute URI, e.g. an MCP server). Every
-- access token of a bound family has that resource as its audience; NULL means an account
-- token, for this server's own API and model gateway.
ALTER TABLE auth_codes ADD COLUMN resource TEXT;
ALTER TABLE device_codes ADD COLUMN resource TEXT;
ALTER TABLE token_families ADD COLUMN resource TEXT;

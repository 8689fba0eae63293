-- RFC 7591 dynamic client registration: clients that registered themselves at
-- /api/auth/mcp/register (MCP clients) are marked, so `client list` tells them from the ones an
-- administrator added and the consent page can say the name is the client's own claim.
ALTER TABLE oauth_clients ADD COLUMN dynamic INTEGER NOT NULL DEFAULT 0;

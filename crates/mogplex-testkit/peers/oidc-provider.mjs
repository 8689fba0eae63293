// node-oidc-provider configured as a deployer would run it for the mogplex CLI, on loopback.
//
// Why this exists: the CLI must sign in against any standards-compliant authorization server, and
// mogplex-server's SSO must work with a company's OpenID provider. node-oidc-provider is
// OpenID-certified; the tests run it with a production-like configuration (PKCE required, refresh
// token rotation, revocation, device flow, the `mogplex-cli` public client) and its own login and
// consent pages, never devInteractions (which accept any login and ignore the password).
//
// Usage: node oidc-provider.mjs [CONFIG_JSON]   (or the JSON in $MOGPLEX_OIDC_CONFIG)
// It listens on 127.0.0.1 (port 0 unless "port" is given) and, once ready, prints exactly one line
// on stdout: {"issuer":"http://127.0.0.1:PORT/PATH","port":PORT}. Diagnostics go to stderr.
// Every configuration key is documented in CONFIG_KEYS below; an unknown key is an error.
//
// Pages (plain HTML, no scripts, no external resources; every form is method="post"):
//   login    <form id="login">   inputs `login` (account id or email), `password`;
//                                button#submit "Sign in". A wrong password re-renders it with
//                                <p id="error">; the page title is "Sign in".
//   consent  <form id="consent"> buttons#allow (name=decision value=allow) "Allow" and
//                                #deny (value=deny) "Deny"; lists the client and the scopes.
//   device   <form id="op.deviceInputForm"> input `user_code`, button#submit "Continue";
//            <form id="op.deviceConfirmForm"> button#allow "Continue", button#abort "Abort";
//            success page: <h1 id="success">.
//   errors   <h1 id="error-title">, <p id="error">CODE</p>, <p id="error-description">.

import crypto from 'node:crypto';
import http from 'node:http';
import process from 'node:process';

import Provider from 'oidc-provider';

const CONFIG_KEYS = {
  port: 'TCP port on 127.0.0.1 (default 0: any free port)',
  issuerPath: 'path of the issuer, e.g. "/oidc" (default "": the issuer is the origin)',
  cliClientId: 'client id of the public CLI client (default "mogplex-cli")',
  cliRedirectUris: 'redirect URIs registered for the CLI client besides the two defaults',
  cliApplicationType: '"native" (default: any port on a loopback redirect, RFC 8252) or "web" (exact match)',
  clients: 'extra clients: raw node-oidc-provider client metadata (client_id, client_secret, redirect_uris, ...)',
  extraScopes: 'scopes offered besides "openid profile email offline_access", e.g. ["read","write"]',
  accounts: 'accounts: [{id, email, emailVerified, name, password}]; no password: any non-empty one',
  accessTokenTtl: 'access token lifetime in seconds (default 3600)',
  refreshTokenTtl: 'refresh token lifetime in seconds (default 14 days)',
  idTokenTtl: 'ID token lifetime in seconds (default 3600)',
  deviceCodeTtl: 'device code lifetime in seconds (default 600)',
  clockTolerance: 'seconds of clock skew tolerated, also past a token\'s expiry (default 15, the provider\'s)',
  rotateRefreshTokens: 'rotate the refresh token on every use (default true)',
  refreshWithoutOfflineAccess: 'issue a refresh token to every client allowed the refresh grant, with or without offline_access (default false: only with offline_access, granted only with prompt=consent)',
  requireNonce: 'refuse (error=invalid_request at the redirect URI) an openid authorization request without nonce; not the device flow, which has none (default false)',
  conformIdTokenClaims: 'true (default): profile/email claims only from userinfo when an access token is issued; false: also in the ID token',
  dynamicRegistration: 'enable RFC 7591 dynamic client registration at /reg (default false)',
  introspection: 'enable RFC 7662 introspection (default true)',
  oauthMetadata: 'serve {issuer}/.well-known/oauth-authorization-server as the provider does (default true)',
  rfc8414PathInsertion: 'also serve /.well-known/oauth-authorization-server{issuerPath} (RFC 8414 section 3) (default false)',
  benchRefreshTokens: 'for `cargo xtask bench-server`: {count, scope} mints count refresh tokens of the CLI client for the first account at start, each its own grant, listed as "refreshTokens" in the ready line (default: none)',
};

function fail(message) {
  process.stderr.write(`oidc-provider.mjs: ${message}\n`);
  process.exit(2);
}

let cfg;
try {
  cfg = JSON.parse(process.argv[2] ?? process.env.MOGPLEX_OIDC_CONFIG ?? '{}');
} catch (err) {
  fail(`the configuration is not JSON: ${err.message}`);
}
if (cfg === null || typeof cfg !== 'object' || Array.isArray(cfg)) {
  fail('the configuration must be a JSON object');
}
for (const key of Object.keys(cfg)) {
  if (!(key in CONFIG_KEYS)) {
    fail(`unknown configuration key "${key}"; known: ${Object.keys(CONFIG_KEYS).join(', ')}`);
  }
}

const issuerPath = (cfg.issuerPath ?? '').replace(/\/+$/, '');
if (issuerPath !== '' && !issuerPath.startsWith('/')) {
  fail('issuerPath must start with "/"');
}

const accounts = (cfg.accounts ?? [
  {
    id: 'alice', email: 'alice@example.com', emailVerified: true, name: 'Alice Example',
  },
]).map((a) => ({
  id: String(a.id),
  email: a.email,
  emailVerified: a.emailVerified ?? true,
  name: a.name,
  password: a.password,
}));

function findByLogin(login) {
  const wanted = String(login ?? '').trim().toLowerCase();
  return accounts.find((a) => a.id.toLowerCase() === wanted || a.email?.toLowerCase() === wanted);
}

function passwordMatches(account, password) {
  if (typeof password !== 'string' || password === '') return false;
  if (account.password === undefined || account.password === null) return true;
  const a = Buffer.from(password);
  const b = Buffer.from(String(account.password));
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}

function esc(value) {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  }[c]));
}

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main>
${body}
</main></body></html>
`;
}

function signingKeys() {
  const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  return {
    keys: [
      { ...rsa, kid: `rs-${crypto.randomUUID()}`, alg: 'RS256', use: 'sig' },
      { ...ec, kid: `es-${crypto.randomUUID()}`, alg: 'ES256', use: 'sig' },
    ],
  };
}

const server = http.createServer();
server.on('clientError', (_err, socket) => socket.destroy());
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(cfg.port ?? 0, '127.0.0.1', resolve);
});
const { port } = server.address();
const origin = `http://127.0.0.1:${port}`;
const issuer = `${origin}${issuerPath}`;

const ttl = (value, fallback) => {
  const n = value ?? fallback;
  if (!Number.isInteger(n) || n <= 0) fail(`a TTL must be a positive integer of seconds, got ${JSON.stringify(value)}`);
  return n;
};

const cliClient = {
  client_id: cfg.cliClientId ?? 'mogplex-cli',
  client_name: 'Mogplex CLI',
  application_type: cfg.cliApplicationType ?? 'native',
  token_endpoint_auth_method: 'none',
  redirect_uris: [
    'http://127.0.0.1:24816/auth/callback',
    'http://127.0.0.1:24818/auth/callback',
    ...(cfg.cliRedirectUris ?? []),
  ],
  grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
  response_types: ['code'],
};

const configuration = {
  clients: [cliClient, ...(cfg.clients ?? [])],
  responseTypes: ['code'],
  scopes: ['openid', 'profile', 'email', 'offline_access', ...(cfg.extraScopes ?? [])],
  claims: {
    openid: ['sub'],
    profile: ['name'],
    email: ['email', 'email_verified'],
  },
  conformIdTokenClaims: cfg.conformIdTokenClaims ?? true,
  clockTolerance: cfg.clockTolerance ?? 15,
  jwks: signingKeys(),
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  pkce: { required: () => true },
  rotateRefreshToken: cfg.rotateRefreshTokens ?? true,
  // The provider's rule (OpenID Connect Core section 11): a refresh token only with the
  // offline_access scope, which it grants only with prompt=consent. Some deployers relax it.
  ...(cfg.refreshWithoutOfflineAccess ? {
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  } : {}),
  ttl: {
    AccessToken: ttl(cfg.accessTokenTtl, 3600),
    AuthorizationCode: 60,
    DeviceCode: ttl(cfg.deviceCodeTtl, 600),
    IdToken: ttl(cfg.idTokenTtl, 3600),
    RefreshToken: ttl(cfg.refreshTokenTtl, 14 * 24 * 3600),
    Interaction: 3600,
    Session: 14 * 24 * 3600,
    Grant: 14 * 24 * 3600,
  },
  async findAccount(_ctx, sub) {
    const account = accounts.find((a) => a.id === sub);
    if (!account) return undefined;
    return {
      accountId: account.id,
      async claims() {
        const claims = { sub: account.id };
        if (account.email !== undefined) {
          claims.email = account.email;
          claims.email_verified = Boolean(account.emailVerified);
        }
        if (account.name !== undefined) claims.name = account.name;
        return claims;
      },
    };
  },
  interactions: {
    url: (_ctx, interaction) => `${issuerPath}/interaction/${interaction.uid}`,
  },
  features: {
    devInteractions: { enabled: false },
    revocation: { enabled: true },
    introspection: { enabled: cfg.introspection ?? true },
    registration: { enabled: cfg.dynamicRegistration ?? false },
    userinfo: { enabled: true },
    rpInitiatedLogout: {
      enabled: true,
      async logoutSource(ctx, form) {
        ctx.body = page('Sign out', `<h1>Sign out</h1>
${form}
<button type="submit" id="logout" form="op.logoutForm" name="logout" value="yes">Sign out</button>
<button type="submit" id="stay" form="op.logoutForm">Stay signed in</button>`);
      },
      async postLogoutSuccessSource(ctx) {
        ctx.body = page('Signed out', '<h1 id="signed-out">Signed out</h1>');
      },
    },
    deviceFlow: {
      enabled: true,
      async userCodeInputSource(ctx, form, _out, err) {
        let message = '<p>Enter the code displayed on your device.</p>';
        if (err && (err.userCode || err.name === 'NoCodeError')) {
          message = '<p id="error">The code you entered is incorrect. Try again.</p>';
        } else if (err && err.name === 'AbortedError') {
          message = '<p id="error">The sign-in request was interrupted.</p>';
        } else if (err) {
          message = '<p id="error">There was an error processing your request.</p>';
        }
        ctx.body = page('Device sign-in', `<h1>Device sign-in</h1>
${message}
${form}
<button type="submit" id="submit" form="op.deviceInputForm">Continue</button>`);
      },
      async userCodeConfirmSource(ctx, form, client, _deviceInfo, userCode) {
        ctx.body = page('Confirm device', `<h1>Confirm device</h1>
<p><strong id="client">${esc(client.clientName ?? client.clientId)}</strong> shows the code
<code id="user-code">${esc(userCode)}</code>.</p>
${form}
<button type="submit" id="allow" form="op.deviceConfirmForm">Continue</button>
<button type="submit" id="abort" form="op.deviceConfirmForm" name="abort" value="yes">Abort</button>`);
      },
      async successSource(ctx) {
        ctx.body = page('Signed in', `<h1 id="success">Signed in</h1>
<p>Your device is signed in as ${esc(ctx.oidc.client.clientName ?? ctx.oidc.client.clientId)}; you can close this page.</p>`);
      },
    },
  },
  async renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = page('Error', `<h1 id="error-title">Something went wrong</h1>
<p id="error">${esc(out.error)}</p>
<p id="error-description">${esc(out.error_description)}</p>`);
  },
};

let provider;
try {
  provider = new Provider(issuer, configuration);
} catch (err) {
  fail(`invalid provider configuration: ${err.message}`);
}
// Static clients are validated lazily; load each now so that a bad one fails the start.
for (const client of configuration.clients) {
  try {
    await provider.Client.find(String(client.client_id));
  } catch (err) {
    fail(`invalid client ${JSON.stringify(client.client_id)}: ${err.error_description ?? err.message}`);
  }
}
provider.on('server_error', (_ctx, err) => process.stderr.write(`server_error: ${err.stack ?? err}\n`));

const handle = provider.callback();

function send(res, status, type, body, headers = {}) {
  res.writeHead(status, {
    'content-type': type, 'cache-control': 'no-store', ...headers,
  });
  res.end(body);
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function loginPage(uid, details, error) {
  const hint = details.params.login_hint;
  return page('Sign in', `<h1>Sign in</h1>
<p>to continue to <strong id="client">${esc(details.params.client_id)}</strong></p>
${error ? `<p id="error">${esc(error)}</p>` : ''}
<form id="login" method="post" action="${esc(`${issuerPath}/interaction/${uid}/login`)}">
<label>Email or account id <input type="text" name="login" autocomplete="username" value="${esc(hint)}" required></label>
<label>Password <input type="password" name="password" autocomplete="current-password" required></label>
<button type="submit" id="submit">Sign in</button>
</form>`);
}

function consentPage(uid, details, client) {
  const scopes = (details.prompt.details.missingOIDCScope ?? [])
    .concat(Object.values(details.prompt.details.missingResourceScopes ?? {}).flat());
  return page('Authorize', `<h1>Authorize ${esc(client?.clientName ?? details.params.client_id)}</h1>
<p>Client <code id="client">${esc(details.params.client_id)}</code> asks for:</p>
<ul id="scopes">${scopes.map((s) => `<li>${esc(s)}</li>`).join('')}</ul>
<p>It will be sent back to <code id="redirect">${esc(details.params.redirect_uri)}</code>.</p>
<form id="consent" method="post" action="${esc(`${issuerPath}/interaction/${uid}/confirm`)}">
<button type="submit" id="allow" name="decision" value="allow">Allow</button>
<button type="submit" id="deny" name="decision" value="deny">Deny</button>
</form>`);
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) {
    send(res, 400, 'text/html; charset=utf-8', page('Error', '<p id="error">This sign-in page is stale; start again.</p>'));
    return;
  }
  const { prompt, params } = details;

  if (req.method === 'GET' && action === '') {
    // A nonce belongs to authorization requests (OpenID Connect Core 3.1.2.1); the device flow
    // (RFC 8628) has none, so the requirement does not apply to it.
    const deviceFlow = String(details.returnTo ?? '').includes('/device/');
    if (cfg.requireNonce && !deviceFlow && String(params.scope ?? '').split(' ').includes('openid') && !params.nonce) {
      await provider.interactionFinished(req, res, {
        error: 'invalid_request', error_description: 'nonce is required',
      }, { mergeWithLastSubmission: false });
      return;
    }
    if (prompt.name === 'login') {
      send(res, 200, 'text/html; charset=utf-8', loginPage(uid, details));
    } else if (prompt.name === 'consent') {
      const client = await provider.Client.find(params.client_id);
      send(res, 200, 'text/html; charset=utf-8', consentPage(uid, details, client));
    } else {
      send(res, 501, 'text/html; charset=utf-8', page('Error', `<p id="error">prompt ${esc(prompt.name)} is not supported</p>`));
    }
    return;
  }

  if (req.method === 'POST' && action === 'login' && prompt.name === 'login') {
    const form = await readForm(req);
    const account = findByLogin(form.get('login'));
    if (!account || !passwordMatches(account, form.get('password'))) {
      send(res, 200, 'text/html; charset=utf-8', loginPage(uid, details, 'Invalid email or password.'));
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: account.id } }, { mergeWithLastSubmission: false });
    return;
  }

  if (req.method === 'POST' && action === 'confirm' && prompt.name === 'consent') {
    const form = await readForm(req);
    if (form.get('decision') !== 'allow') {
      await provider.interactionFinished(req, res, {
        error: 'access_denied', error_description: 'the user denied the request',
      }, { mergeWithLastSubmission: false });
      return;
    }
    const { details: missing } = prompt;
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    return;
  }

  send(res, 405, 'text/html; charset=utf-8', page('Error', '<p id="error">This step does not accept that request.</p>'));
}

const interactionRoute = new RegExp(`^${issuerPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/interaction/([A-Za-z0-9_-]+)(?:/(login|confirm))?$`);
const oauthMetadataPath = `${issuerPath}/.well-known/oauth-authorization-server`;
const insertedMetadataPath = `/.well-known/oauth-authorization-server${issuerPath}`;

server.on('request', async (req, res) => {
  try {
    const url = new URL(req.url, origin);
    const match = interactionRoute.exec(url.pathname);
    if (match) {
      await interaction(req, res, match[1], match[2] ?? '');
      return;
    }
    if (url.pathname === oauthMetadataPath && cfg.oauthMetadata === false) {
      send(res, 404, 'application/json', JSON.stringify({ error: 'not_found' }));
      return;
    }
    if (cfg.rfc8414PathInsertion && issuerPath !== '' && url.pathname === insertedMetadataPath) {
      // The provider derives its mount path from originalUrl: present it as the appended form.
      req.originalUrl = oauthMetadataPath;
      req.url = '/.well-known/oauth-authorization-server';
      handle(req, res);
      return;
    }
    if (issuerPath !== '') {
      if (url.pathname !== issuerPath && !url.pathname.startsWith(`${issuerPath}/`)) {
        send(res, 404, 'application/json', JSON.stringify({ error: 'not_found' }));
        return;
      }
      req.originalUrl = req.url;
      req.url = req.url.slice(issuerPath.length) || '/';
    }
    handle(req, res);
  } catch (err) {
    process.stderr.write(`request failed: ${err.stack ?? err}\n`);
    if (!res.headersSent) {
      send(res, 400, 'text/html; charset=utf-8', page('Error', `<p id="error">${esc(err.message)}</p>`));
    } else {
      res.end();
    }
  }
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => process.exit(0));
}
// The test harness holds our stdin: when it goes away (the test process died), so do we.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();

// The benchmark's refresh chains, minted as the consent step would (a grant, then a refresh
// token bound to it), so `cargo xtask bench-server` measures the refresh grant alone.
const refreshTokens = [];
if (cfg.benchRefreshTokens) {
  const { count, scope } = cfg.benchRefreshTokens;
  if (!Number.isInteger(count) || count <= 0 || typeof scope !== 'string') {
    fail('benchRefreshTokens must be {"count": a positive integer, "scope": a string}');
  }
  const client = await provider.Client.find(cliClient.client_id);
  const now = Math.floor(Date.now() / 1000);
  for (let i = 0; i < count; i += 1) {
    const grant = new provider.Grant({ accountId: accounts[0].id, clientId: client.clientId });
    grant.addOIDCScope(scope);
    const grantId = await grant.save();
    const token = new provider.RefreshToken({
      accountId: accounts[0].id,
      authTime: now,
      client,
      expiresWithSession: false,
      grantId,
      gty: 'authorization_code',
      iiat: now,
      rotations: 0,
      scope,
    });
    refreshTokens.push(await token.save());
  }
}

process.stdout.write(`${JSON.stringify({ issuer, port, ...(cfg.benchRefreshTokens ? { refreshTokens } : {}) })}\n`);

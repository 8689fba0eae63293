// openid-client (a certified OpenID relying party) driven over stdio, to check an authorization
// server the way third-party tools would use it: discovery, an authorization code + PKCE + nonce
// sign-in with the ID token validated (including its signature against the JWKS), userinfo, a
// refresh, revocation. mogplex-server's OpenID provider is tested with it; so is this harness.
//
// Usage: node openid-client.mjs CONFIG_JSON   (keys in CONFIG_KEYS below; unknown keys fail)
// Prints one JSON object per line on stdout, in order:
//   {"step":"discovery","metadata":{...}}
//   {"step":"authorize","url":"...","state":"...","nonce":"..."}
//       then reads ONE line on stdin: the address the browser was sent back to
//   {"step":"token","response":{...},"claims":{...ID token claims, or null}}
//   {"step":"userinfo","response":{...}}                   (when "userinfo" is in steps)
//   {"step":"refresh","response":{...},"claims":{...}}     (when "refresh" is in steps)
//   {"step":"revoke"}                                      (when "revoke" is in steps)
//   {"step":"done"}
// On failure: {"step":"error","at":STEP,"name":...,"code":...,"error":...,"error_description":...,
// "message":...} and exit status 1. Diagnostics go to stderr.

import process from 'node:process';
import readline from 'node:readline';

import * as client from 'openid-client';

const CONFIG_KEYS = {
  server: 'the issuer URL to discover',
  algorithm: '"oidc" (default: {issuer}/.well-known/openid-configuration) or "oauth2" (RFC 8414, path inserted)',
  clientId: 'client id',
  clientSecret: 'client secret (confidential clients)',
  authMethod: '"none" (default), "client_secret_basic" or "client_secret_post"',
  redirectUri: 'redirect URI sent in the authorization request',
  scope: 'scope (default "openid profile email")',
  params: 'extra authorization request parameters, e.g. {"prompt":"consent"}',
  nonce: 'send a nonce and require it in the ID token (default true when scope has openid)',
  nonRepudiation: 'verify ID token signatures against the JWKS (default true)',
  steps: 'what to do after the code exchange, in order, from ["userinfo","refresh","revoke"] (default all three)',
};

function emit(event) {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

let at = 'configuration';
function failWith(err) {
  emit({
    step: 'error',
    at,
    name: err?.name,
    code: err?.code,
    error: err?.error ?? err?.cause?.error,
    error_description: err?.error_description ?? err?.cause?.error_description,
    message: err?.message ?? String(err),
  });
  if (err?.stack) process.stderr.write(`${err.stack}\n`);
  process.exit(1);
}

let cfg;
try {
  cfg = JSON.parse(process.argv[2] ?? '{}');
  for (const key of Object.keys(cfg)) {
    if (!(key in CONFIG_KEYS)) throw new Error(`unknown configuration key "${key}"; known: ${Object.keys(CONFIG_KEYS).join(', ')}`);
  }
  for (const key of ['server', 'clientId', 'redirectUri']) {
    if (typeof cfg[key] !== 'string') throw new Error(`"${key}" is required`);
  }
} catch (err) {
  failWith(err);
}

const scope = cfg.scope ?? 'openid profile email';
const openid = scope.split(' ').includes('openid');
const auth = {
  none: () => client.None(),
  client_secret_basic: () => client.ClientSecretBasic(cfg.clientSecret),
  client_secret_post: () => client.ClientSecretPost(cfg.clientSecret),
}[cfg.authMethod ?? 'none'];
if (!auth) failWith(new Error(`unknown authMethod ${JSON.stringify(cfg.authMethod)}`));

const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();

try {
  at = 'discovery';
  const server = new URL(cfg.server);
  const execute = server.protocol === 'http:' ? [client.allowInsecureRequests] : [];
  if (cfg.nonRepudiation ?? true) execute.push(client.enableNonRepudiationChecks);
  const config = await client.discovery(server, cfg.clientId, cfg.clientSecret, auth(), {
    algorithm: cfg.algorithm ?? 'oidc',
    execute,
  });
  emit({ step: 'discovery', metadata: config.serverMetadata() });

  at = 'authorize';
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = (cfg.nonce ?? openid) ? client.randomNonce() : undefined;
  const params = {
    redirect_uri: cfg.redirectUri,
    scope,
    state,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    ...(nonce ? { nonce } : {}),
    ...(cfg.params ?? {}),
  };
  emit({
    step: 'authorize', url: client.buildAuthorizationUrl(config, params).href, state, nonce,
  });
  const callback = await lines.next();
  if (callback.done) throw new Error('stdin closed before the callback address arrived');

  at = 'token';
  const tokens = await client.authorizationCodeGrant(config, new URL(callback.value.trim()), {
    pkceCodeVerifier: verifier,
    expectedState: state,
    ...(nonce ? { expectedNonce: nonce } : {}),
    idTokenExpected: openid,
  });
  const claims = tokens.claims() ?? null;
  emit({ step: 'token', response: { ...tokens }, claims });

  let current = tokens;
  for (const step of cfg.steps ?? ['userinfo', 'refresh', 'revoke']) {
    at = step;
    if (step === 'userinfo') {
      const info = await client.fetchUserInfo(config, current.access_token, claims?.sub ?? client.skipSubjectCheck);
      emit({ step, response: info });
    } else if (step === 'refresh') {
      if (!current.refresh_token) throw new Error('no refresh token was issued');
      current = await client.refreshTokenGrant(config, current.refresh_token);
      emit({ step, response: { ...current }, claims: current.claims() ?? null });
    } else if (step === 'revoke') {
      await client.tokenRevocation(config, current.refresh_token ?? current.access_token);
      emit({ step });
    } else {
      throw new Error(`unknown step ${JSON.stringify(step)}`);
    }
  }
  emit({ step: 'done' });
  process.exit(0);
} catch (err) {
  failWith(err);
}

// The Tallydesk server of the end-to-end tests (scripts/e2e starts it): accounts made the way an
// operator makes them, tokens got the way any OIDC client gets them, and signing in from the app.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { browse } from './browser.mjs';

export const server = process.env.TALLYDESK_E2E_SERVER_URL;
const work = process.env.TALLYDESK_E2E_WORK;

/** `tallydesk-server create-admin`, the password on standard input, as a headless install does. */
export function createAdmin(person) {
  const run = spawnSync(process.env.TALLYDESK_SERVER_BIN, ['create-admin', '--email', person.email, '--name', person.name], {
    input: `${person.password}\n`,
    encoding: 'utf8',
    timeout: 60000,
  });
  assert.equal(run.status, 0, `create-admin ${person.email} failed: ${run.stderr}`);
}

/** An access token for `person` by the code flow with PKCE, as any client of the issuer gets one. */
export async function accessToken(person) {
  const discovery = await (await fetch(`${server}/.well-known/openid-configuration`)).json();
  const verifier = randomBytes(32).toString('base64url');
  const redirect = 'http://127.0.0.1:9/callback';
  const authorize = new URL(discovery.authorization_endpoint);
  authorize.search = new URLSearchParams({
    response_type: 'code',
    client_id: 'tallydesk-desktop',
    redirect_uri: redirect,
    scope: 'openid email profile',
    state: randomBytes(8).toString('hex'),
    nonce: randomBytes(8).toString('hex'),
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  }).toString();
  const landed = await browse(authorize.href, person, { stopAt: (url) => url.startsWith(redirect) });
  const code = new URL(landed.url).searchParams.get('code');
  assert.ok(code, `the issuer redirected back with a code: ${landed.url}`);
  const response = await fetch(discovery.token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      redirect_uri: redirect,
      client_id: 'tallydesk-desktop',
      code_verifier: verifier,
    }),
  });
  const tokens = await response.json();
  assert.equal(response.status, 200, `the token endpoint answered: ${JSON.stringify(tokens)}`);
  return tokens.access_token;
}

export async function api(token, method, path, body, tenant) {
  const response = await fetch(`${server}/api/v1${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(tenant ? { 'x-tenant-id': tenant } : {}),
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await response.json().catch(() => null);
  assert.ok(response.ok, `${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}

/** The credentials the stand-in browser types into the login page. */
export function loginAs(person) {
  writeFileSync(join(work, 'login.json'), JSON.stringify(person));
}


/** Connects the app on `driver` to the server from Settings and signs `person` in with a
 * Tallydesk account; the stand-in browser (TALLYDESK_BROWSER) fills in the login page. */
export async function signInFromApp(driver, person, { beforeSignIn = async () => {} } = {}) {
  await (await driver.find('link', 'Settings')).click();
  await driver.find('region', 'Account');
  await (await driver.find('textbox', 'Server URL')).type(server);
  await (await driver.find('button', 'Connect')).click();
  await driver.find('heading', 'Sign in to Tallydesk', 15000);
  await beforeSignIn();
  loginAs(person);
  await (await driver.find('button', 'Sign in with Tallydesk account')).click();
  await driver.find('button', 'Account menu', 30000);
}

/** Leaves the server for local mode, so the next tests find the local workspace. */
export async function workOffline(driver) {
  await (await driver.find('link', 'Settings')).click();
  await (await driver.find('button', 'Disconnect')).click();
  await driver.find('dialog', /^Disconnect/);
  // While the dialog is open only its own controls count: this is its confirm button.
  await (await driver.find('button', 'Disconnect')).click();
  await driver.find('button', 'Connect', 15000);
}

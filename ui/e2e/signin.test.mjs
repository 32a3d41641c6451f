// End-to-end: a person signs in to a Tallydesk server from the app with a Tallydesk account (the
// server's own OIDC issuer, through the "browser" that fills in its login page), works as admin
// of one tenant, switches to a tenant where they are an observer and sees only what an observer
// may do, and signs out. The server is real (scripts/e2e starts it), and so is the keyring.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { browse } from './browser.mjs';
import { WebDriver } from './webdriver.mjs';

const app = process.env.TALLYDESK_APP;
const server = process.env.TALLYDESK_E2E_SERVER_URL;
const work = process.env.TALLYDESK_E2E_WORK;
const artifacts = process.env.TALLYDESK_ARTIFACTS ?? 'artifacts';
const driver = new WebDriver(process.env.TAURI_DRIVER_URL ?? 'http://127.0.0.1:4444');

const ana = { email: `ana.${Date.now()}@example.com`, name: 'Ana Lima', password: 'correct horse battery' };
const bob = { email: `bob.${Date.now()}@example.com`, name: 'Bob Stone', password: 'staple gun orbit 42' };
const northwind = `Northwind ${Date.now()}`;

async function shot(name) {
  mkdirSync(artifacts, { recursive: true });
  writeFileSync(join(artifacts, `${name}.png`), await driver.screenshot());
}

/** `tallydesk-server create-admin`, the password on standard input, as a headless install does. */
function createAdmin(person) {
  const run = spawnSync(process.env.TALLYDESK_SERVER_BIN, ['create-admin', '--email', person.email, '--name', person.name], {
    input: `${person.password}\n`,
    encoding: 'utf8',
    timeout: 60000,
  });
  assert.equal(run.status, 0, `create-admin ${person.email} failed: ${run.stderr}`);
}

/** An access token for `person` by the code flow with PKCE, as any client of the issuer gets one. */
async function accessToken(person) {
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

async function api(token, method, path, body, tenant) {
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
function loginAs(person) {
  writeFileSync(join(work, 'login.json'), JSON.stringify(person));
}

before(async () => {
  assert.ok(app, 'TALLYDESK_APP names the app binary (scripts/e2e sets it)');
  assert.ok(server && work, 'scripts/e2e starts a server (TALLYDESK_E2E_SERVER_URL, TALLYDESK_E2E_WORK)');
  // Ana and Bob administer "Default"; Bob also runs Northwind, where Ana is only an observer.
  createAdmin(ana);
  createAdmin(bob);
  const bobToken = await accessToken(bob);
  const tenant = await api(bobToken, 'POST', '/tenants', { name: northwind });
  await api(bobToken, 'POST', '/invitations', { email: ana.email, role: 'observer' }, tenant.id);

  await driver.start(app);
  await driver.find('navigation', 'Views', 30000);
});

after(async () => {
  await driver.stop();
  rmSync(join(work ?? '.', 'login.json'), { force: true });
});

test('sign in with a Tallydesk account, switch tenant, see what the role allows, sign out', async () => {
  try {
    await signInSwitchAndSignOut();
  } catch (error) {
    await shot('signin-failed').catch(() => {});
    throw error;
  }
});

async function signInSwitchAndSignOut() {
  // Connect from Settings: the server offers its own accounts.
  await (await driver.find('link', 'Settings')).click();
  await driver.find('region', 'Account');
  await (await driver.find('textbox', 'Server URL')).type(server);
  await (await driver.find('button', 'Connect')).click();
  await driver.find('heading', 'Sign in to Tallydesk', 15000);
  await shot('signin-01-sign-in');

  loginAs(ana);
  await (await driver.find('button', 'Sign in with Tallydesk account')).click();
  // The browser step (TALLYDESK_BROWSER) fills in the login page; the app catches the redirect.
  await driver.find('button', 'Account menu', 30000);
  assert.match(await driver.bodyText(), /Ana Lima/, 'the signed-in person is shown');

  // Admin of Default: members are managed here.
  await (await driver.find('link', 'Members')).click();
  const members = await driver.find('table', 'Members', 15000);
  assert.match(await members.text(), new RegExp(bob.email.replace('.', '\\.')), 'the tenant’s other admin is listed');
  await driver.find('button', 'Invite member');
  await shot('signin-02-members-as-admin');

  // The keychain (gnome-keyring on this session bus) keeps the sign-in: no memory-only warning.
  await (await driver.find('link', 'Settings')).click();
  const account = await driver.find('region', 'Account');
  assert.doesNotMatch(await account.text(), /can.t be saved|memory/i, 'the refresh token went to the keychain');
  assert.match(await account.text(), /Admin/, 'the role in the active tenant is shown');
  await shot('signin-03-account');

  // A restart keeps the sign-in: the refresh token comes back from the keychain.
  await driver.stop();
  await driver.start(app);
  await driver.find('button', 'Account menu', 30000);
  assert.equal((await driver.findAll('heading', 'Sign in to Tallydesk')).length, 0, 'no sign-in after a restart');

  // Northwind: Ana is an observer there. Read-only: no new tickets, no invitations.
  const tenant = await driver.find('combobox', 'Tenant');
  await tenant.choose(new RegExp(`^${northwind}`));
  await (await driver.find('link', 'All tickets')).click();
  await driver.gone('button', 'New ticket', 15000);
  await (await driver.find('link', 'Members')).click();
  await driver.find('table', 'Members', 15000);
  assert.equal((await driver.findAll('button', 'Invite member')).length, 0, 'observers may not invite');
  await shot('signin-04-observer');

  // Sign out from the account menu: back to the sign-in screen, also after a restart.
  await (await driver.find('button', 'Account menu')).click();
  await (await driver.find('menuitem', 'Sign out')).click();
  await driver.find('heading', 'Sign in to Tallydesk', 15000);
  await shot('signin-05-signed-out');
  await driver.stop();
  await driver.start(app);
  await driver.find('heading', 'Sign in to Tallydesk', 30000);

  // Working offline leaves the server: the local workspace again, as its admin (the other tests
  // share this profile).
  await (await driver.find('button', 'Work offline without a server')).click();
  await driver.find('navigation', 'Views', 15000);
  await (await driver.find('link', 'Settings')).click();
  await driver.find('button', 'Connect');
}

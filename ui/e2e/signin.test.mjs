// End-to-end: a person signs in to a Tallydesk server from the app with a Tallydesk account (the
// server's own OIDC issuer, through the "browser" that fills in its login page), works as admin
// of one tenant, switches to a tenant where they are an observer and sees only what an observer
// may do, and signs out. The server is real (scripts/e2e starts it), and so is the keyring.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { accessToken, api, createAdmin, loginAs, signInFromApp } from './server.mjs';
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
  await signInFromApp(driver, ana, { beforeSignIn: () => shot('signin-01-sign-in') });
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

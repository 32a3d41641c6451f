// End-to-end: the real app in the real webview (WebKitGTK), driven through tauri-driver.
// Run by scripts/e2e, which builds the app and starts Xvfb, D-Bus and tauri-driver.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { WebDriver } from './webdriver.mjs';

const app = process.env.TALLYDESK_APP;
const artifacts = process.env.TALLYDESK_ARTIFACTS ?? 'artifacts';
const driver = new WebDriver(process.env.TAURI_DRIVER_URL ?? 'http://127.0.0.1:4444');

async function shot(name) {
  mkdirSync(artifacts, { recursive: true });
  writeFileSync(join(artifacts, `${name}.png`), await driver.screenshot());
}

before(async () => {
  assert.ok(app, 'TALLYDESK_APP names the app binary (scripts/e2e sets it)');
  await driver.start(app);
  await driver.find('navigation', 'Views', 30000);
});

after(async () => {
  // Always end the session: tauri-driver serves one at a time.
  await driver.stop();
});

test('the window is titled Tallydesk and opens on a demo workspace', async () => {
  assert.equal(await driver.title(), 'Tallydesk');
  await driver.find('button', 'Remove demo data');
  await shot('01-queue-demo');
});

test('a ticket goes from creation through comments, hold, resume and resolution', async () => {
  const title = `Projector in room 4 shows no signal ${Date.now()}`;
  await (await driver.find('button', 'New ticket')).click();
  await driver.find('dialog', 'New ticket');
  await shot('02-new-ticket');
  await (await driver.find('textbox', 'Title')).type(title);
  await (await driver.find('textbox', 'Description')).type('HDMI and USB-C both tried.');
  await (await driver.find('button', 'Create ticket')).click();
  await driver.gone('dialog', 'New ticket');

  // The new ticket opens (or is found in the queue) and can be worked.
  await driver.until('the new ticket on screen', async () => (await driver.bodyText()).includes(title));
  const opened = await driver.findAll('button', 'Put on hold');
  if (opened.length === 0) {
    await (await driver.find('link', new RegExp(title))).click();
  }
  await (await driver.find('textbox', 'Reply')).type('Checked the cable, replacing the adapter.');
  await (await driver.find('button', 'Send')).click();
  await driver.until('the reply in the thread', async () => (await driver.bodyText()).includes('replacing the adapter'));

  await (await driver.find('textbox', 'Reply')).type('Adapter stock is low; ordered two more.');
  await (await driver.find('checkbox', 'Internal note')).click();
  await (await driver.find('button', 'Send')).click();
  await driver.until('the note in the thread', async () => (await driver.bodyText()).includes('ordered two more'));

  await (await driver.find('button', 'Put on hold')).click();
  await driver.find('dialog', 'Put on hold');
  const confirm = await driver.findAll('button', 'Put on hold');
  await confirm[confirm.length - 1].click();
  const stillOpen = await driver.findAll('dialog', 'Put on hold');
  assert.equal(stillOpen.length, 1, 'a hold without a reason is not accepted');
  await (await driver.find('textbox', 'Reason')).type('Waiting for the new adapter');
  await (await driver.find('button', /^Put on hold$/)).click().catch(() => {});
  await driver.until('the hold to apply', async () => (await driver.findAll('button', 'Resume')).length > 0);
  assert.ok((await driver.bodyText()).includes('Waiting for the new adapter'), 'the reason is shown');
  await shot('03-ticket-on-hold');

  await (await driver.find('button', 'Resume')).click();
  await (await driver.find('button', 'Resolve')).click();
  await driver.until('the ticket to be resolved', async () => (await driver.findAll('button', 'Reopen')).length > 0);
  await shot('04-ticket-resolved');

  // Search finds it from the queue.
  await (await driver.find('navigation', 'Views'));
  await (await driver.find('link', /All tickets/).catch(() => driver.find('button', /All tickets/))).click();
  const search = await driver.find('searchbox', 'Search tickets').catch(() => driver.find('textbox', 'Search tickets'));
  await search.type('projector');
  await driver.until('the search result', async () => (await driver.findAll('link', new RegExp(title))).length > 0, 10000);
  await shot('05-search');
});

test('customers and settings are reachable, and dark mode switches the theme', async () => {
  await (await driver.find('link', /Customers/).catch(() => driver.find('button', /Customers/))).click();
  await driver.until('the customers list', async () => (await driver.bodyText()).includes('Northwind'));
  await shot('06-customers');

  await (await driver.find('link', /Settings/).catch(() => driver.find('button', /Settings/))).click();
  await (await driver.find('radio', 'Dark')).click();
  const dark = await driver.until('dark mode', async () =>
    driver.execute("return document.documentElement.dataset.theme === 'dark' || document.documentElement.classList.contains('dark')"));
  assert.ok(dark, 'the document switches to the dark theme');
  await shot('07-settings-dark');
  await (await driver.find('link', /All tickets/).catch(() => driver.find('button', /All tickets/))).click();
  await shot('08-queue-dark');
});

test('the shortcut help sheet opens with ?', async () => {
  await driver.execute('document.activeElement && document.activeElement.blur()');
  await driver.execute("document.body.dispatchEvent(new KeyboardEvent('keydown', { key: '?', bubbles: true }))");
  await driver.find('dialog', 'Keyboard shortcuts');
  await shot('09-shortcuts');
});

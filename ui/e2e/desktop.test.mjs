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

  // The new ticket opens; the admin opening it starts work on it.
  await driver.find('heading', new RegExp(title));
  await driver.find('button', 'Put on hold');

  await (await driver.find('textbox', 'Reply')).type('Checked the cable, replacing the adapter.');
  await (await driver.find('button', 'Send')).click();
  await driver.find('article', /^Reply by /);

  await (await driver.find('textbox', 'Reply')).type('Adapter stock is low; ordered two more.');
  await (await driver.find('checkbox', 'Internal note')).click();
  await (await driver.find('button', 'Send')).click();
  const note = await driver.find('article', /^Internal note by /);
  assert.match(await note.text(), /ordered two more/, 'the note is in the thread, marked as internal');

  await (await driver.find('button', 'Put on hold')).click();
  await driver.find('dialog', 'Put on hold');
  await (await driver.find('button', 'Put on hold')).click();
  assert.equal((await driver.findAll('dialog', 'Put on hold')).length, 1, 'a hold without a reason is not accepted');
  await (await driver.find('textbox', 'Reason')).type('Waiting for the new adapter');
  await (await driver.find('button', 'Put on hold')).click();
  await driver.gone('dialog', 'Put on hold');
  await driver.find('button', 'Resume');
  assert.match(await driver.bodyText(), /Waiting for the new adapter/, 'the reason is shown');
  await shot('03-ticket-on-hold');

  await (await driver.find('button', 'Resume')).click();
  // Wait until the resumed ticket has re-rendered (Put on hold is back), so the click doesn't
  // hit a Resolve button that the re-render is about to replace.
  await driver.find('button', 'Put on hold');
  await (await driver.find('button', 'Resolve')).click();
  await driver.find('button', 'Reopen');
  await shot('04-ticket-resolved');

  // Search finds it from the queue.
  await (await driver.find('link', 'All tickets')).click();
  await (await driver.find('searchbox', 'Search tickets')).type('projector');
  await driver.until('only the matching ticket listed', async () =>
    (await driver.findAll('link', title)).length === 1 && (await driver.findAll('link', /Printer on 3rd floor/)).length === 0);
  await shot('05-search');
  await (await driver.find('button', 'Clear filters')).click();
  await driver.find('link', /Printer on 3rd floor/);
});

test('customers and settings are reachable, and dark mode switches the theme', async () => {
  await (await driver.find('link', 'Customers')).click();
  await driver.find('link', 'Northwind Traders');
  await shot('06-customers');

  await (await driver.find('link', 'Settings')).click();
  await (await driver.find('radio', 'Dark')).click();
  await driver.until('dark mode', () => driver.execute("return document.documentElement.dataset.theme === 'dark'"));
  await shot('07-settings-dark');
  await (await driver.find('link', 'All tickets')).click();
  await driver.find('link', /Printer on 3rd floor/);
  await shot('08-queue-dark');
});

test('the shortcut help sheet opens with ?', async () => {
  await driver.execute('document.activeElement && document.activeElement.blur()');
  await driver.press('?');
  await driver.find('dialog', 'Keyboard shortcuts');
  await shot('09-shortcuts');
});

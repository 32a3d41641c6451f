// End-to-end: an admin sets up an SLA policy on the Settings screen, and a ticket created
// afterwards shows its countdown, in words, on the ticket and in the queue.
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

async function invoke(command, args) {
  const result = await driver.execute(
    'return window.__TAURI_INTERNALS__.invoke(arguments[0], arguments[1]).then((data) => ({ ok: true, data }), (error) => ({ ok: false, error }));',
    [command, args],
  );
  assert.ok(result.ok, `${command} failed: ${JSON.stringify(result.error)}`);
  return result.data;
}

before(async () => {
  assert.ok(app, 'TALLYDESK_APP names the app binary (scripts/e2e sets it)');
  await driver.start(app);
  await driver.find('navigation', 'Views', 30000);
});

after(async () => {
  await driver.stop();
});

test('a policy made in Settings gives a new ticket a countdown in the queue', async () => {
  // Start from no policies: the demo's would otherwise be tried first.
  for (const policy of await invoke('list_sla_policies', {})) {
    await invoke('delete_sla_policy', { id: policy.id });
  }

  await (await driver.find('link', 'Settings')).click();
  await (await driver.find('button', 'New policy')).click();
  await driver.find('dialog', 'New SLA policy');
  const name = `Half-hour replies ${Date.now()}`;
  await (await driver.find('textbox', 'Name')).type(name);
  await (await driver.find('spinbutton', 'First response')).type('30');
  await shot('sla-01-policy-dialog');
  await (await driver.find('button', 'Create policy')).click();
  await driver.gone('dialog', 'New SLA policy');
  await driver.find('listitem', name);
  await shot('sla-02-policies');
  const saved = (await invoke('list_sla_policies', {})).find((p) => p.name === name);
  assert.equal(saved?.first_response_minutes, 30, 'the policy Rust stored has the target typed on the screen');

  const title = `Badge printer offline ${Date.now()}`;
  await (await driver.find('button', 'New ticket')).click();
  await driver.find('dialog', 'New ticket');
  await (await driver.find('textbox', 'Title')).type(title);
  await (await driver.find('button', 'Create ticket')).click();
  await driver.gone('dialog', 'New ticket');

  // The new ticket opens, with its SLA: 30 minutes to the first response, not yet at risk.
  await driver.find('heading', new RegExp(title));
  await driver.find('listitem', 'First response: On track');
  assert.match(await driver.bodyText(), new RegExp(`Policy: ${name}`), 'the policy is named on the ticket');
  await shot('sla-03-ticket');

  await (await driver.find('link', 'All tickets')).click();
  await driver.find('link', title);
  const rowText = () =>
    driver.execute(
      "return Array.from(document.querySelectorAll('tbody tr')).map((tr) => tr.textContent.replace(/\\s+/g, ' ')).find((t) => t.includes(arguments[0])) || ''",
      [title],
    );
  await driver.until('the countdown in the row', async () => /\b(30|29) min left/.test(await rowText()), 5000).catch(() => {});
  await shot('sla-04-queue');
  const page = await invoke('list_tickets', { query: { view: 'all', search: title, limit: 5 } });
  const sent = page.items.find((t) => t.title === title)?.sla;
  assert.equal(sent?.state, 'running', `Rust lists the ticket with its first-response target running: ${JSON.stringify(sent)}`);
  assert.match(await rowText(), /\b(30|29) min left/, 'the queue shows the countdown in words');
});

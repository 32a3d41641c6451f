// End-to-end: receipts dropped on the real app are read by the real OCR models, reviewed,
// corrected and filed on a new expense claim. Run by scripts/e2e (see desktop.test.mjs).
//
// Under Xvfb no other program can drag files onto the window, so the test sends the window the
// event the system would (`tauri://drag-drop`, to the window labelled "main"), the way Tauri
// itself emits it; scripts/e2e sets TALLYDESK_E2E_EMIT_EVENTS so the window may emit it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { WebDriver } from './webdriver.mjs';

const app = process.env.TALLYDESK_APP;
const artifacts = process.env.TALLYDESK_ARTIFACTS ?? 'artifacts';
const driver = new WebDriver(process.env.TAURI_DRIVER_URL ?? 'http://127.0.0.1:4444');

const root = fileURLToPath(new URL('../..', import.meta.url));
// A receipt photo of the repository's own (merchant "KEDAI BUKU MERANTI SDN BHD", 25/12/2018, RM 9.00).
const receipt = resolve(root, 'ocr/tests/fixtures/receipts/stationery-my.jpg');
const scratch = mkdtempSync(join(tmpdir(), 'tallydesk-receipts-'));
const notAnImage = join(scratch, 'not-a-receipt.jpg');

const MERCHANT = 'Kedai Buku Meranti Sdn Bhd';
/** Reading a receipt on the CPU of a debug build, models loaded first. */
const OCR_MS = 120_000;

async function shot(name) {
  mkdirSync(artifacts, { recursive: true });
  writeFileSync(join(artifacts, `${name}.png`), await driver.screenshot());
}

/** Sends the main window one of the events the system sends it while files are dragged. */
async function windowEvent(name, payload) {
  const error = await driver.executeAsync(
    `const [event, payload, done] = arguments;
     window.__TAURI_INTERNALS__
       .invoke('plugin:event|emit_to', { target: { kind: 'AnyLabel', label: 'main' }, event, payload })
       .then(() => done(null), (e) => done(String(e)));`,
    [`tauri://${name}`, payload],
  );
  assert.equal(error, null, `the window takes the ${name} event`);
}

/** Replaces what a field holds with `text`, typed as a person would. */
async function fill(element, text) {
  await driver.execute(
    `const el = arguments[0]; el.focus(); el.value = ''; el.dispatchEvent(new Event('input', { bubbles: true }));`,
    [{ 'element-6066-11e4-a52e-4f735466cecf': element.id }],
  );
  await element.type(text);
}

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

before(async () => {
  assert.ok(app, 'TALLYDESK_APP names the app binary (scripts/e2e sets it)');
  assert.ok(existsSync(receipt), `the sample receipt is at ${receipt}`);
  writeFileSync(notAnImage, 'This is a note about lunch, not a photo of a receipt.\n');
  await driver.start(app);
  await driver.find('navigation', 'Views', 30000);
});

after(async () => {
  await driver.stop();
  rmSync(scratch, { recursive: true, force: true });
});

test('receipts dropped on the window are read one by one; a file that is no image says why', async () => {
  await driver.until('the window to take drops', () => driver.execute("return document.documentElement.dataset.drops === 'ready'"), 15000);

  await windowEvent('drag-enter', { paths: [receipt, notAnImage], position: { x: 400, y: 300 } });
  await driver.until('the drop overlay', async () => (await driver.bodyText()).includes('Drop receipts to read them'));
  await shot('10-drop-overlay');
  await windowEvent('drag-drop', { paths: [receipt, notAnImage], position: { x: 400, y: 300 } });
  await driver.until('the overlay to go', async () => !(await driver.bodyText()).includes('Drop receipts to read them'));

  // Both files are listed at once; the good one is read, the bad one fails and the batch goes on.
  const bad = await driver.find('listitem', 'not-a-receipt.jpg', 15000);
  await driver.find('listitem', 'stationery-my.jpg');
  await driver.until('stationery-my.jpg to be read', async () => /\bRead\b/.test(await (await driver.find('listitem', 'stationery-my.jpg')).text()), OCR_MS);
  await driver.until('the bad file to fail', async () => /Not read/.test(await bad.text()), OCR_MS);
  assert.match(await bad.text(), /Not read: Not an image \(supported: JPEG/, 'the error says what is wrong with the file');
  await driver.until('the summary', async () => (await driver.bodyText()).includes('1 receipt read, 1 could not be read'));
  await shot('11-scan-tray');
});

test('the review shows the photo and what was read; a corrected receipt is filed on a new claim', async () => {
  await (await driver.find('button', 'Review stationery-my.jpg')).click();
  await driver.find('heading', 'Review receipt');

  await driver.until(
    'the receipt photo to load',
    () =>
      driver.execute(
        "const img = document.querySelector('figure img'); return Boolean(img && img.complete && img.naturalWidth > 0 && img.src.startsWith('receipt:'))",
      ),
    15000,
  );
  const outlined = await driver.execute("return document.querySelectorAll('figure svg polygon').length");
  assert.ok(outlined > 5, `the lines read are outlined on the photo (${outlined})`);

  const merchant = await driver.find('textbox', 'Merchant');
  const read = await merchant.value();
  assert.ok(read === '' || /KEDAI BUKU MERANTI/.test(read), `the merchant is the one on the receipt, or left empty for the person to type (${read})`);
  const total = await driver.find('textbox', 'Total');
  assert.equal(await total.value(), '9.00', 'the total was read from the receipt');
  const date = await driver.execute("return document.getElementById('expense-spent_on').value");
  assert.equal(date, '2018-12-25', 'the date was read from the receipt');
  assert.equal(await (await driver.find('textbox', 'Currency')).value(), 'MYR');

  // Focusing a field highlights the line it was read from.
  await total.click();
  await driver.until('the total highlighted on the photo', () => driver.execute("return document.querySelectorAll('figure svg polygon.lit').length > 0"));
  await shot('12-review');

  await fill(merchant, MERCHANT);
  await driver.until('the merchant marked as checked', async () =>
    !(await driver.execute("return document.getElementById('expense-merchant').getAttribute('aria-describedby') || ''")).includes('check'),
  );

  await (await driver.find('button', 'Submit…')).click();
  await driver.find('dialog', 'Submit expense');
  await shot('13-submit');
  await (await driver.find('button', 'Submit expense')).click();
  await driver.gone('dialog', 'Submit expense');

  // The new claim opens, with the expense (as corrected) in its Expenses section.
  await driver.find('heading', new RegExp(`Expense claim: ${escape(MERCHANT)}, 2018-12-25`), 15000);
  const filed = await driver.find('listitem', new RegExp(`^${escape(MERCHANT)}, MYR`));
  assert.match(await filed.text(), /Submitted/);
  await driver.until('the activity to say so', async () => (await driver.bodyText()).includes(`filed an expense: ${MERCHANT}`));
  await shot('14-claim');
});

test('the Expenses view lists the filed expense with its total', async () => {
  await (await driver.find('link', 'Expenses')).click();
  await driver.find('table', 'Expenses');
  const row = await driver.find('row', new RegExp(escape(MERCHANT)));
  const text = await row.text();
  assert.match(text, /9\.00/, 'the total is listed');
  assert.match(text, /Submitted/);
  assert.match(await driver.bodyText(), /MYR\s9\.00\s+1 expense/, 'the total per currency counts it');
  await shot('15-expenses');
});

// End-to-end: SLA alerts reach the desktop's notification daemon (dunst, started by
// scripts/e2e on the test's D-Bus session) before and when a target breaches, and the app
// shows a tray item. Prints the latency from the breach to the notification on the bus.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { realpathSync } from 'node:fs';

import { WebDriver } from './webdriver.mjs';

const app = process.env.TALLYDESK_APP;
const driver = new WebDriver(process.env.TAURI_DRIVER_URL ?? 'http://127.0.0.1:4444');

/** Notify calls seen on the session bus: {at (ms), summary, body}. */
const notifications = [];
let monitor;

function watchNotifications() {
  monitor = spawn('dbus-monitor', ['--session', "interface='org.freedesktop.Notifications',member='Notify'"]);
  let buffer = '';
  let current = null;
  monitor.stdout.on('data', (chunk) => {
    const seenAt = Date.now();
    buffer += chunk.toString();
    const lines = buffer.split('\n');
    buffer = lines.pop();
    for (const line of lines) {
      if (/member=Notify/.test(line)) {
        current = { at: seenAt, strings: [] };
        notifications.push(current);
      } else if (current) {
        const s = line.match(/^\s+string "(.*)"$/);
        if (s) current.strings.push(s[1]);
        // app name, icon, summary, body are the first four strings.
        if (current.strings.length >= 4 && !current.body) {
          [, , current.summary, current.body] = current.strings;
        }
      }
    }
  });
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
  watchNotifications();
  await driver.start(app);
  await driver.find('navigation', 'Views', 30000);
});

after(async () => {
  await driver.stop();
  monitor?.kill();
});

test('a one-minute first-response target notifies when at risk and when breached', async () => {
  // Start from the person's own data: the demo's policies would otherwise apply first.
  for (const policy of await invoke('list_sla_policies', {})) {
    await invoke('delete_sla_policy', { id: policy.id });
  }
  await invoke('save_sla_policy', {
    id: null,
    version: null,
    input: {
      name: 'One minute',
      position: 0,
      active: true,
      priorities: null,
      // Only this test's ticket: earlier tests' recent tickets would breach and notify too.
      categories: ['access'],
      customer_ids: null,
      first_response_minutes: 1,
      next_response_minutes: null,
      resolution_minutes: null,
      business_hours: false,
      calendar_id: null,
      warn_minutes: null,
    },
  });
  const title = `Printer on fire ${Date.now()}`;
  const ticket = await invoke('create_ticket', { input: { title, description: '', category: 'access' } });
  const breachAt = Date.parse(ticket.created_at) + 60_000;

  // A one-minute target is inside its 15-minute warning from the start.
  await driver.until('the at-risk notification', async () =>
    notifications.some((n) => n.summary === 'SLA at risk' && n.body?.includes(`#${ticket.number} ${title}: first response due in 1 min`)), 30000);
  // Clear the screen of other notifications (earlier tests' tickets, start-up summaries), so the
  // breach is the only one shown when it comes; closing shown ones brings queued ones forward.
  const count = (what) => Number(execFileSync('dunstctl', ['count', what]).toString().trim());
  for (let i = 0; i < 50 && count('displayed') + count('waiting') > 0; i++) {
    execFileSync('dunstctl', ['close-all']);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await driver.until('the breach notification', async () =>
    notifications.some((n) => n.summary === 'SLA breached' && n.body?.startsWith(`#${ticket.number} ${title}: first response overdue`)), 90000);
  const breach = notifications.find((n) => n.summary === 'SLA breached' && n.body?.includes(title));
  console.log(`SLA breach to notification on the bus: ${breach.at - breachAt} ms`);
  assert.equal(
    notifications.filter((n) => n.body?.includes(title)).length,
    2,
    'each event is announced once',
  );

  // Clicking the notification (dunst's default action on the first one shown) opens the ticket.
  execFileSync('dunstctl', ['action', '0']);
  await driver.find('heading', new RegExp(`#${ticket.number}\\b`), 15000);
});

test('the app has a tray item on the bus', async () => {
  // The connections of processes running the app's binary (not another program whose command
  // line merely mentions its path).
  const binary = realpathSync(app);
  const runsApp = (pid) => {
    try {
      return realpathSync(`/proc/${pid}/exe`) === binary;
    } catch {
      return false;
    }
  };
  const names = execFileSync('dbus-send', [
    '--session', '--print-reply', '--dest=org.freedesktop.DBus', '/org/freedesktop/DBus',
    'org.freedesktop.DBus.ListNames',
  ]).toString().match(/string ":[0-9.]+"/g).map((s) => s.slice(8, -1));
  const ours = names.filter((name) => {
    try {
      const reply = execFileSync('dbus-send', [
        '--session', '--print-reply', '--dest=org.freedesktop.DBus', '/org/freedesktop/DBus',
        'org.freedesktop.DBus.GetConnectionUnixProcessID', `string:${name}`,
      ], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
      const pid = reply.match(/uint32 (\d+)/)?.[1];
      return pid !== undefined && runsApp(pid);
    } catch {
      return false;
    }
  });
  const trees = ours.map((name) => {
    try {
      return execFileSync('dbus-send', [
        '--session', '--print-reply', `--dest=${name}`, '/org/ayatana/NotificationItem',
        'org.freedesktop.DBus.Introspectable.Introspect',
      ], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
    } catch {
      return '';
    }
  });
  assert.ok(
    trees.some((xml) => /<node name="[^"]+"/.test(xml)),
    `a StatusNotifierItem under /org/ayatana/NotificationItem on one of ${ours.join(', ')}`,
  );
});

import { screen, waitFor, within } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import { emit } from '@tauri-apps/api/event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { CalendarRecord, Policy, TargetState } from '../lib/ipc';
import { countdown } from '../lib/sla';
import type { FakeDesk } from './fake-desk';
import { goTo, installDesk, renderApp } from './harness';

vi.mock('../bindings', () => import('./fake-bindings'));

let desk: FakeDesk;

beforeEach(() => {
  desk = installDesk({ tickets: 12 });
});

afterEach(() => {
  vi.useRealTimers();
});

const MIN = 60_000;
const iso = (ms: number) => new Date(ms).toISOString();

function target(fields: Partial<TargetState>): TargetState {
  return {
    target: 'first_response',
    state: 'running',
    due_at: null,
    remaining_seconds: 0,
    breached_at: null,
    at_risk_at: null,
    met_at: null,
    next_change_at: null,
    ...fields,
  };
}

const NOW = Date.parse('2025-03-10T10:00:00Z');

describe('an SLA countdown', () => {
  it('says each state in words, so it reads without its colour', () => {
    const running = target({ due_at: iso(NOW + 130 * MIN), next_change_at: iso(NOW + 104 * MIN), remaining_seconds: 130 * 60 });
    expect(countdown(running, NOW)).toBe('2 h 10 min left');
    const atRisk = target({ state: 'at_risk', due_at: iso(NOW + 9 * MIN), at_risk_at: iso(NOW - 6 * MIN), next_change_at: iso(NOW + 9 * MIN) });
    expect(countdown(atRisk, NOW)).toBe('At risk · 9 min left');
    const breached = target({ state: 'breached', due_at: iso(NOW - 12 * MIN), breached_at: iso(NOW - 12 * MIN), remaining_seconds: -720 });
    expect(countdown(breached, NOW)).toBe('Breached 12 min ago');
    expect(countdown(target({ state: 'paused', remaining_seconds: 3600 }), NOW)).toBe('Paused');
    expect(countdown(target({ state: 'met', met_at: iso(NOW - MIN) }), NOW)).toBe('Met');
    expect(countdown(target({ due_at: iso(NOW + 3 * 24 * 60 * MIN + 4 * 60 * MIN) }), NOW)).toBe('3 d 4 h left');
    const long = target({ state: 'breached', breached_at: iso(NOW - (4 * 24 + 20) * 60 * MIN), remaining_seconds: -1 });
    expect(countdown(long, NOW), 'past a day the days say enough, and fit the queue').toBe('Breached 4 d ago');
  });

  it('moves on by itself: a running target turns at risk at its warning, then breached at its due time', () => {
    const running = target({ due_at: iso(NOW + 20 * MIN), next_change_at: iso(NOW + 5 * MIN), remaining_seconds: 20 * 60 });
    expect(countdown(running, NOW + 4 * MIN)).toBe('16 min left');
    expect(countdown(running, NOW + 6 * MIN), 'past next_change_at the warning starts without asking Rust').toBe('At risk · 14 min left');
    expect(countdown(running, NOW + 20 * MIN + 30_000)).toBe('Breached just now');
    expect(countdown(running, NOW + 32 * MIN)).toBe('Breached 12 min ago');
  });
});

/** Gives ticket `number` (1-based) an SLA whose most urgent target is `t`. */
function giveSla(number: number, t: TargetState) {
  desk.slas.set(desk.tickets[number - 1].id, { policy_id: 'p', policy_name: 'Standard', targets: [t] });
}

function slaCell(title: string): HTMLElement {
  const row = screen.getByRole('link', { name: title }).closest('tr')!;
  const column = screen.getAllByRole('columnheader').findIndex((h) => h.textContent === 'SLA');
  return row.querySelectorAll('td')[column] as HTMLElement;
}

describe('the queue’s SLA column', () => {
  it('shows the most urgent target as a countdown with text, and nothing without a policy', async () => {
    const now = Date.now();
    giveSla(1, target({ state: 'breached', due_at: iso(now - 12 * MIN), breached_at: iso(now - 12 * MIN), remaining_seconds: -720 }));
    giveSla(2, target({ state: 'at_risk', due_at: iso(now + 9 * MIN), next_change_at: iso(now + 9 * MIN), remaining_seconds: 540 }));
    giveSla(3, target({ due_at: iso(now + 130 * MIN), next_change_at: iso(now + 104 * MIN), remaining_seconds: 7800 }));
    giveSla(4, target({ state: 'paused', remaining_seconds: 600 }));
    giveSla(5, target({ state: 'met', met_at: iso(now - MIN) }));
    await renderApp();
    await screen.findByRole('table', { name: 'Tickets' });
    expect(screen.getByRole('columnheader', { name: 'SLA' })).toBeInTheDocument();
    expect(slaCell(desk.tickets[0].title)).toHaveTextContent('Breached 12 min ago');
    expect(slaCell(desk.tickets[1].title)).toHaveTextContent('At risk · 9 min left');
    expect(slaCell(desk.tickets[2].title)).toHaveTextContent('2 h 10 min left');
    expect(slaCell(desk.tickets[3].title)).toHaveTextContent('Paused');
    expect(slaCell(desk.tickets[4].title)).toHaveTextContent('Met');
    expect(slaCell(desk.tickets[5].title), 'a ticket no policy applies to shows nothing').toHaveTextContent(/^$/);
  });

  it('counts down on the app’s clock, without asking Rust again', async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true, toFake: ['setInterval', 'clearInterval', 'Date'] });
    const now = Date.now();
    giveSla(1, target({ due_at: iso(now + 20 * MIN), next_change_at: iso(now + 5 * MIN), remaining_seconds: 1200 }));
    const list = vi.spyOn(desk.commands, 'listTickets');
    await renderApp();
    await screen.findByRole('table', { name: 'Tickets' });
    expect(slaCell(desk.tickets[0].title)).toHaveTextContent('20 min left');
    const calls = list.mock.calls.length;

    await vi.advanceTimersByTimeAsync(6 * MIN);
    await waitFor(() => expect(slaCell(desk.tickets[0].title)).toHaveTextContent('At risk · 14 min left'));
    await vi.advanceTimersByTimeAsync(15 * MIN);
    await waitFor(() => expect(slaCell(desk.tickets[0].title)).toHaveTextContent('Breached 1 min ago'));
    expect(list.mock.calls.length, 'the countdown ticks in the page; the queue is not read again').toBe(calls);
  });
});

describe('a ticket’s SLA', () => {
  it('lists each target with its state, due time and breach, under the policy’s name', async () => {
    const now = Date.now();
    desk.slas.set(desk.tickets[1].id, {
      policy_id: 'p',
      policy_name: 'Urgent hardware',
      targets: [
        target({ target: 'first_response', state: 'breached', due_at: iso(now - 30 * MIN), breached_at: iso(now - 30 * MIN), remaining_seconds: -1800 }),
        target({ target: 'resolution', due_at: iso(now + 5 * 60 * MIN), next_change_at: iso(now + 4 * 60 * MIN), remaining_seconds: 5 * 3600 }),
      ],
    });
    goTo({ name: 'ticket', id: desk.tickets[1].id });
    await renderApp();
    const section = await screen.findByRole('region', { name: 'SLA' });
    expect(section).toHaveTextContent('Policy: Urgent hardware');
    const first = within(section).getByRole('listitem', { name: 'First response: Breached' });
    expect(first).toHaveTextContent('Breached 30 min ago');
    expect(within(first).getAllByText(/30 min ago/).length).toBeGreaterThan(0);
    const resolution = within(section).getByRole('listitem', { name: 'Resolution: On track' });
    expect(resolution).toHaveTextContent('5 h left');
    expect(resolution, 'the due time is given as a date and from now').toHaveTextContent(/Due.*\(in 5 hr\.?\)/);
  });

  it('tells Rust the ticket is on screen, and that none is once it is left', async () => {
    const id = desk.tickets[1].id;
    goTo({ name: 'ticket', id });
    await renderApp();
    await screen.findByRole('heading', { level: 1, name: /#2\b/ });
    await waitFor(() => expect(desk.watched, 'the ticket on screen does not notify').toEqual([id]));

    await userEvent.click(screen.getByRole('button', { name: 'Back to queue' }));
    await screen.findByRole('table', { name: 'Tickets' });
    await waitFor(() => expect(desk.watched, 'leaving it lets it notify again').toEqual([id, null]));
  });

  it('follows j and k to the next ticket shown', async () => {
    await renderApp();
    await userEvent.click(await screen.findByRole('link', { name: desk.tickets[11].title }));
    await screen.findByRole('heading', { level: 1, name: /#12\b/ });
    await userEvent.keyboard('j');
    await screen.findByRole('heading', { level: 1, name: /#11\b/ });
    await waitFor(() => expect(desk.watched[desk.watched.length - 1], 'the last word is the ticket now on screen').toBe(desk.tickets[10].id));
  });
});

describe('alerts muted outside the window', () => {
  it('shows a mute set from the tray menu, and one set before the window opened', async () => {
    desk.state.mutedUntil = new Date(Date.now() + 3_600_000).toISOString();
    await renderApp();
    expect(await screen.findByRole('button', { name: /Alerts muted until .*: resume them/ })).toBeInTheDocument();
    await emit('alerts-muted', null);
    await waitFor(() => expect(screen.queryByRole('button', { name: /Alerts muted until/ })).toBeNull());
    await emit('alerts-muted', new Date(Date.now() + 7_200_000).toISOString());
    expect(await screen.findByRole('button', { name: /Alerts muted until .*: resume them/ })).toBeInTheDocument();
  });
});

describe('a ticket asked for by Rust', () => {
  it('opens when a notification or the tray sends open-ticket', async () => {
    await renderApp();
    await screen.findByRole('table', { name: 'Tickets' });
    await emit('open-ticket', desk.tickets[6].id);
    expect(await screen.findByRole('heading', { level: 1, name: /#7\b/ })).toBeInTheDocument();
  });
});

function calendar(fields: Partial<CalendarRecord> = {}): CalendarRecord {
  const c: CalendarRecord = {
    id: `cal-${desk.calendars.length + 1}`,
    version: 1,
    name: 'Office hours',
    time_zone: 'Europe/Paris',
    weekly: { mon: [['09:00', '17:00']], tue: [['09:00', '17:00']], wed: [['09:00', '17:00']], thu: [['09:00', '17:00']], fri: [['09:00', '17:00']], sat: [], sun: [] },
    holidays: [],
    ...fields,
  };
  desk.calendars.push(c);
  return c;
}

function policy(fields: Partial<Policy> = {}): Policy {
  const p: Policy = {
    id: `pol-${desk.policies.length + 1}`,
    version: 1,
    name: 'Standard',
    position: desk.policies.length,
    active: true,
    priorities: null,
    categories: null,
    customer_ids: null,
    first_response_minutes: 60,
    next_response_minutes: null,
    resolution_minutes: 480,
    business_hours: false,
    calendar_id: null,
    warn_minutes: null,
    ...fields,
  };
  desk.policies.push(p);
  return p;
}

async function openSettings() {
  goTo({ name: 'settings' });
  await renderApp();
  return screen.findByRole('region', { name: 'SLA policies' });
}

describe('SLA policies in Settings', () => {
  it('creates a policy from the dialog with the input Rust expects', async () => {
    const office = calendar();
    policy();
    const save = vi.spyOn(desk.commands, 'saveSlaPolicy');
    const section = await openSettings();
    await userEvent.click(within(section).getByRole('button', { name: 'New policy' }));
    const dialog = screen.getByRole('dialog', { name: 'New SLA policy' });

    await userEvent.type(within(dialog).getByRole('textbox', { name: 'Name' }), 'Urgent hardware');
    const priorities = within(dialog).getByRole('group', { name: 'Priorities' });
    await userEvent.click(within(priorities).getByRole('checkbox', { name: 'Urgent' }));
    await userEvent.click(within(priorities).getByRole('checkbox', { name: 'High' }));
    await userEvent.click(within(within(dialog).getByRole('group', { name: 'Categories' })).getByRole('checkbox', { name: 'Hardware' }));
    await userEvent.type(within(dialog).getByRole('spinbutton', { name: 'First response' }), '30');
    await userEvent.type(within(dialog).getByRole('spinbutton', { name: 'Resolution' }), '240');
    await userEvent.click(within(dialog).getByRole('checkbox', { name: 'Count business hours only' }));
    await userEvent.selectOptions(within(dialog).getByRole('combobox', { name: 'Calendar' }), 'Office hours (Europe/Paris)');
    const warn = within(dialog).getByRole('spinbutton', { name: /Warn when less/ });
    expect(warn, 'the default is explained where it is set').toHaveAccessibleDescription(
      expect.stringContaining('15 minutes or 20% of the target, whichever is larger'),
    );
    await userEvent.click(within(dialog).getByRole('button', { name: 'Create policy' }));

    expect(save).toHaveBeenCalledWith(
      null,
      {
        name: 'Urgent hardware',
        position: 1,
        active: true,
        priorities: ['high', 'urgent'],
        categories: ['hardware'],
        customer_ids: null,
        first_response_minutes: 30,
        next_response_minutes: null,
        resolution_minutes: 240,
        business_hours: true,
        calendar_id: office.id,
        warn_minutes: null,
      },
      null,
    );
    await waitFor(() => expect(screen.queryByRole('dialog')).toBeNull());
    const rows = within(await screen.findByRole('list', { name: 'SLA policies' })).getAllByRole('listitem');
    expect(rows.map((r) => r.getAttribute('aria-label')), 'the new policy is tried last').toEqual(['Standard', 'Urgent hardware']);
    expect(rows[1]).toHaveTextContent('Business hours of Office hours');
  });

  it('shows Rust’s field error next to its field, and keeps the dialog open', async () => {
    const section = await openSettings();
    await userEvent.click(within(section).getByRole('button', { name: 'New policy' }));
    const dialog = screen.getByRole('dialog', { name: 'New SLA policy' });
    await userEvent.type(within(dialog).getByRole('textbox', { name: 'Name' }), 'No targets');
    await userEvent.click(within(dialog).getByRole('button', { name: 'Create policy' }));

    const resolution = within(dialog).getByRole('spinbutton', { name: 'Resolution' });
    await waitFor(() => expect(resolution).toHaveAttribute('aria-invalid', 'true'));
    expect(resolution, 'the error is tied to the field Rust named').toHaveAccessibleDescription(
      expect.stringContaining('Set at least one target (first response, next response or resolution).'),
    );
    expect(screen.getByRole('dialog', { name: 'New SLA policy' })).toBeInTheDocument();
  });

  it('reloads and says so when the policy changed meanwhile', async () => {
    const p = policy();
    const section = await openSettings();
    await userEvent.click(within(section).getByRole('button', { name: 'Edit Standard' }));
    const dialog = screen.getByRole('dialog', { name: 'Edit SLA policy' });
    Object.assign(p, { version: 2, name: 'Standard (renamed elsewhere)' });
    await userEvent.click(within(dialog).getByRole('button', { name: 'Save policy' }));
    expect(await within(dialog).findByRole('alert')).toHaveTextContent(/changed this policy after you opened it/);
    expect(within(dialog).getByRole('textbox', { name: 'Name' }), 'the form shows what is saved now').toHaveValue('Standard (renamed elsewhere)');
  });

  it('moves a policy down by saving the new positions', async () => {
    const a = policy({ name: 'First' });
    const b = policy({ name: 'Second' });
    const save = vi.spyOn(desk.commands, 'saveSlaPolicy');
    await openSettings();
    await userEvent.click(await screen.findByRole('button', { name: 'Move First down' }));
    await waitFor(() =>
      expect(within(screen.getByRole('list', { name: 'SLA policies' })).getAllByRole('listitem').map((r) => r.getAttribute('aria-label'))).toEqual([
        'Second',
        'First',
      ]),
    );
    expect(save).toHaveBeenCalledWith(b.id, expect.objectContaining({ name: 'Second', position: 0 }), 1);
    expect(save).toHaveBeenCalledWith(a.id, expect.objectContaining({ name: 'First', position: 1 }), 1);
    expect(screen.getByRole('button', { name: 'Move Second up' })).toBeDisabled();
  });

  it('deletes a policy after asking', async () => {
    policy({ name: 'Old' });
    await openSettings();
    await userEvent.click(await screen.findByRole('button', { name: 'Delete Old' }));
    await userEvent.click(within(screen.getByRole('dialog', { name: 'Delete policy?' })).getByRole('button', { name: 'Delete policy' }));
    await screen.findByText('No SLA policies: tickets have no targets.');
    expect(desk.policies).toHaveLength(0);
  });

  it('is read-only for a role without manage_tenant_settings', async () => {
    desk.signInAs('agent');
    policy();
    const section = await openSettings();
    await within(section).findByRole('list', { name: 'SLA policies' });
    expect(within(section).getByText(/Your role cannot change the policies/)).toBeInTheDocument();
    expect(within(section).queryByRole('button')).toBeNull();
  });
});

describe('calendars in Settings', () => {
  it('creates a calendar with its hours and holidays', async () => {
    const save = vi.spyOn(desk.commands, 'saveCalendar');
    await openSettings();
    await userEvent.click(screen.getByRole('button', { name: 'New calendar' }));
    const dialog = screen.getByRole('dialog', { name: 'New calendar' });
    await userEvent.type(within(dialog).getByRole('textbox', { name: 'Name' }), 'Paris office');
    const zone = within(dialog).getByRole('combobox', { name: 'Time zone' });
    await userEvent.clear(zone);
    await userEvent.type(zone, 'Europe/Paris');
    await userEvent.click(within(dialog).getByRole('button', { name: 'Remove Friday hours 09:00–17:00' }));
    await userEvent.click(within(dialog).getByRole('button', { name: 'Add hours on Saturday' }));
    const opens = within(dialog).getByRole('textbox', { name: 'Saturday opens' });
    await userEvent.clear(opens);
    await userEvent.type(opens, '10:00');
    await userEvent.click(within(dialog).getByRole('button', { name: 'Add holiday' }));
    await userEvent.type(within(dialog).getByLabelText('Holiday 1'), '2025-12-25');
    await userEvent.click(within(dialog).getByRole('button', { name: 'Create calendar' }));

    const nine = (): [string, string][] => [['09:00', '17:00']];
    expect(save).toHaveBeenCalledWith(
      null,
      {
        name: 'Paris office',
        time_zone: 'Europe/Paris',
        weekly: { mon: nine(), tue: nine(), wed: nine(), thu: nine(), fri: [], sat: [['10:00', '17:00']], sun: [] },
        holidays: ['2025-12-25'],
      },
      null,
    );
    const list = await screen.findByRole('list', { name: 'Calendars' });
    expect(within(list).getByRole('listitem', { name: 'Paris office' })).toHaveTextContent('Mon–Thu 09:00–17:00; Sat 10:00–17:00');
  });

  it('shows the hours error next to the hours', async () => {
    calendar();
    await openSettings();
    await userEvent.click(await screen.findByRole('button', { name: 'Edit Office hours' }));
    const dialog = screen.getByRole('dialog', { name: 'Edit calendar' });
    const closes = within(dialog).getByRole('textbox', { name: 'Monday closes' });
    await userEvent.clear(closes);
    await userEvent.type(closes, '08:00');
    await userEvent.click(within(dialog).getByRole('button', { name: 'Save calendar' }));
    const hours = within(dialog).getByRole('group', { name: 'Opening hours' });
    await waitFor(() => expect(hours).toHaveAccessibleDescription(expect.stringContaining('09:00–08:00: the hours must end after they start.')));
  });

  it('shows why Rust refuses to delete a calendar a policy uses', async () => {
    const office = calendar();
    policy({ name: 'Support', business_hours: true, calendar_id: office.id });
    await openSettings();
    await userEvent.click(await screen.findByRole('button', { name: 'Delete Office hours' }));
    const dialog = screen.getByRole('dialog', { name: 'Delete calendar?' });
    await userEvent.click(within(dialog).getByRole('button', { name: 'Delete calendar' }));
    expect(await within(dialog).findByRole('alert')).toHaveTextContent('The policy "Support" uses this calendar; change it first.');
    expect(desk.calendars, 'the calendar stays').toHaveLength(1);
  });
});

describe('do not disturb', () => {
  it('mutes alerts for an hour, says until when, and resumes them', async () => {
    const mute = vi.spyOn(desk.commands, 'muteAlerts');
    await openSettings();
    const section = screen.getByRole('region', { name: 'SLA alerts' });
    await userEvent.click(within(section).getByRole('button', { name: 'Mute alerts for 1 hour' }));
    expect(mute).toHaveBeenCalledWith('one_hour');
    expect(await within(section).findByRole('status')).toHaveTextContent(/^Muted until /);
    expect(screen.getByRole('button', { name: /Alerts muted until .*: resume them/ }), 'the top bar says so on every screen').toBeInTheDocument();

    await userEvent.click(within(section).getByRole('button', { name: 'Resume alerts' }));
    expect(mute).toHaveBeenLastCalledWith('off');
    await waitFor(() => expect(within(section).getByRole('status')).toHaveTextContent(/^On:/));
    expect(screen.queryByRole('button', { name: /Alerts muted until/ })).toBeNull();
  });
});

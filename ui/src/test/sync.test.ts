// Sync as the person sees it: the indicator in the top bar, the first sync's progress, changes the
// server refused (on the ticket and in a list), asking before leaving the server with unsent
// changes, and screens that show a colleague's edit once a sync has pulled it.

import { emit } from '@tauri-apps/api/event';
import { screen, waitFor, within } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { Rejection, SyncStatus } from '../lib/ipc';
import { changeLabel, describeSync, refusal, staleAfter, unsentWarning } from '../lib/sync';
import { SERVER_URL, type FakeDesk } from './fake-desk';
import { goTo, installDesk, renderApp, renderSignIn } from './harness';

vi.mock('../bindings', () => import('./fake-bindings'));

let desk: FakeDesk;

const SYNCED_AT = '2025-01-06T09:00:00.000Z';

function status(fields: Partial<SyncStatus> = {}): SyncStatus {
  return { state: 'online', unsent: 0, rejected: 0, last_synced_at: SYNCED_AT, progress: null, error: null, ...fields };
}

/** Rust's status changes: `syncStatus` answers it from now on, and the event carries it. */
async function syncNow(fields: Partial<SyncStatus>) {
  desk.sync.status = status(fields);
  await emit('sync-status', desk.syncStatus());
}

/** What the live regions say now. */
const announced = () => screen.getAllByRole('status').map((s) => s.textContent?.trim());

let seq = 0;
function refuse(ticket: number, intent: Rejection['intent'], message: string): Rejection {
  const rejection: Rejection = {
    seq: ++seq,
    ticket_id: desk.tickets[ticket - 1].id,
    intent,
    code: 'illegal_transition',
    message,
    made_at: SYNCED_AT,
  };
  desk.sync.rejections.push(rejection);
  return rejection;
}

const holdOn = (ticket: number): Rejection['intent'] => ({
  op: 'ticket.transition',
  args: { id: desk.tickets[ticket - 1].id, to: 'on_hold', reason: 'waiting for parts' },
});

beforeEach(() => {
  desk = installDesk({ tickets: 12 });
});

describe('the sync indicator', () => {
  it('is there only while signed in to a server', async () => {
    await renderApp();
    expect(screen.queryByRole('button', { name: 'Synced' }), 'a local workspace syncs with nothing').toBeNull();
  });

  it('says synced, with when, in words and an icon', async () => {
    desk.signInAs('agent');
    await renderApp();
    const indicator = await screen.findByRole('button', { name: 'Synced' });
    expect(indicator.querySelector('svg'), 'an icon, not colour alone').not.toBeNull();
    expect(indicator, 'the tooltip says when it last synced').toHaveAttribute('title', expect.stringMatching(/^Last synced /));
    expect(indicator).toHaveAccessibleDescription(expect.stringMatching(/^Last synced /));
    expect(screen.queryByRole('button', { name: 'Sync now' }), 'nothing to retry while online').toBeNull();
  });

  it('follows the sync-status event: offline with the unsent count, Sync now, syncing, synced', async () => {
    desk.signInAs('agent');
    await renderApp();
    await screen.findByRole('button', { name: 'Synced' });
    const asked = vi.spyOn(desk.commands, 'syncStatus');

    await syncNow({ state: 'offline', unsent: 3, error: 'the server could not be reached' });
    expect(await screen.findByRole('button', { name: 'Offline — 3 unsent changes' })).toBeInTheDocument();
    expect(announced(), 'going offline is announced').toContain('Offline — 3 unsent changes');
    expect(asked, 'the event carries the status: no asking Rust again').not.toHaveBeenCalled();

    await userEvent.click(screen.getByRole('button', { name: 'Sync now' }));
    expect(desk.sync.retries, 'Sync now asks Rust to sync without waiting').toBe(1);

    await syncNow({ state: 'syncing', unsent: 3 });
    expect(await screen.findByRole('button', { name: 'Syncing…' })).toBeInTheDocument();
    expect(screen.queryByRole('button', { name: 'Sync now' }), 'already syncing').toBeNull();

    await syncNow({ state: 'online', last_synced_at: '2025-01-06T09:05:00.000Z' });
    expect(await screen.findByRole('button', { name: 'Synced' })).toBeInTheDocument();
  });

  it('opens the details from the keyboard: why it failed, what waits, Sync now; Escape gives focus back', async () => {
    desk.signInAs('agent');
    desk.sync.status = status({ state: 'offline', unsent: 1, error: 'connection refused' });
    await renderApp();
    const indicator = await screen.findByRole('button', { name: 'Offline — 1 unsent change' });
    indicator.focus();
    await userEvent.keyboard('{Enter}');

    const details = screen.getByRole('dialog', { name: 'Sync with the server' });
    expect(indicator).toHaveAttribute('aria-expanded', 'true');
    expect(details).toHaveFocus();
    expect(details).toHaveTextContent('The server cannot be reached. You can keep working');
    expect(details).toHaveTextContent('1 change is waiting to be sent.');
    expect(details).toHaveTextContent('Last attempt: Connection refused.');
    expect(details).toHaveTextContent('The server has taken every change you made.');
    await userEvent.click(within(details).getByRole('button', { name: 'Sync now' }));
    expect(desk.sync.retries).toBe(1);

    await userEvent.keyboard('{Escape}');
    expect(screen.queryByRole('dialog', { name: 'Sync with the server' })).toBeNull();
    expect(indicator, 'Escape gives focus back to the indicator').toHaveFocus();
  });

  it('counts refused changes, lists them all with their tickets, and dismisses them', async () => {
    desk.signInAs('agent');
    await renderApp();
    await screen.findByRole('button', { name: 'Synced' });
    refuse(3, holdOn(3), 'the ticket is closed; its status is final');
    refuse(5, { op: 'comment.create', args: { id: 'c-1', ticket_id: desk.tickets[4].id, body: 'Done', internal: true } }, 'observers cannot write internal notes');
    await syncNow({ state: 'online', last_synced_at: '2025-01-06T09:05:00.000Z' });

    const indicator = await screen.findByRole('button', { name: '2 changes rejected' });
    expect(announced(), 'a refusal is announced').toContain('2 changes rejected');
    await userEvent.click(indicator);
    const details = screen.getByRole('dialog', { name: 'Sync with the server' });
    const hold = await within(details).findByRole('group', { name: 'Refused change: Put on hold' });
    expect(hold).toHaveTextContent('Your change ‘Put on hold’ was refused: the ticket is closed; its status is final.');
    expect(await within(hold).findByRole('link', { name: `#3 ${desk.tickets[2].title}` })).toBeInTheDocument();
    const note = within(details).getByRole('group', { name: 'Refused change: Add an internal note' });
    expect(note).toHaveTextContent('observers cannot write internal notes.');

    const dismiss = vi.spyOn(desk.commands, 'dismissRejection');
    await userEvent.click(within(note).getByRole('button', { name: 'Dismiss' }));
    expect(dismiss).toHaveBeenCalledWith(2);
    await waitFor(() => expect(within(details).queryByRole('group', { name: 'Refused change: Add an internal note' })).toBeNull());
    expect(await screen.findByRole('button', { name: '1 change rejected' }), 'the count follows').toBeInTheDocument();

    await userEvent.click(within(hold).getByRole('link', { name: /^#3 / }));
    expect(await screen.findByRole('heading', { level: 1, name: /#3\b/ }), 'the link opens the ticket').toBeInTheDocument();
    expect(screen.queryByRole('dialog', { name: 'Sync with the server' }), 'and the panel makes way').toBeNull();
  });
});

describe('the first sync of a big organisation', () => {
  it('shows how far it has come, without blocking the app', async () => {
    desk.signInAs('agent');
    desk.sync.status = status({ state: 'syncing', last_synced_at: null, progress: { done: 1000, total: 64000 } });
    await renderApp();

    const region = await screen.findByRole('region', { name: 'Sync progress' });
    expect(region).toHaveTextContent('First sync with the server');
    expect(region).toHaveTextContent('1% received. You can keep working meanwhile.');
    const bar = within(region).getByRole('progressbar', { name: 'Changes received' });
    expect(bar, 'the server says where its log ends: the bar shows how much is done').toHaveAttribute('value', '1000');
    expect(bar).toHaveAttribute('max', '64000');
    expect(bar).toHaveAttribute('aria-valuetext', '1% received');

    await syncNow({ state: 'syncing', last_synced_at: null, progress: { done: 40000, total: 64000 } });
    await waitFor(() => expect(region).toHaveTextContent('62% received'));
    const later = within(region).getByRole('progressbar', { name: 'Changes received' });
    expect(later).toHaveAttribute('value', '40000');
    expect(later).toHaveAttribute('max', '64000');

    await userEvent.click(screen.getByRole('button', { name: 'New ticket' }));
    expect(screen.getByRole('dialog', { name: 'New ticket' }), 'the app works meanwhile').toBeInTheDocument();
    await userEvent.keyboard('{Escape}');

    await syncNow({ state: 'online', last_synced_at: '2025-01-06T09:05:00.000Z' });
    await waitFor(() => expect(screen.queryByRole('region', { name: 'Sync progress' })).toBeNull());
  });

  it('counts the changes received from a server that does not say where its log ends', async () => {
    desk.signInAs('agent');
    desk.sync.status = status({ state: 'syncing', last_synced_at: null, progress: { done: 1000, total: null } });
    await renderApp();
    const region = await screen.findByRole('region', { name: 'Sync progress' });
    expect(region).toHaveTextContent('1,000 changes received. You can keep working meanwhile.');
    const bar = within(region).getByRole('progressbar', { name: 'Changes received' });
    expect(bar, 'no total: the bar only shows that it moves').not.toHaveAttribute('value');
  });

  it('says it is catching up on a later long pull', async () => {
    desk.signInAs('agent');
    desk.sync.status = status({ state: 'syncing', progress: { done: 1, total: null } });
    await renderApp();
    const region = await screen.findByRole('region', { name: 'Sync progress' });
    expect(region).toHaveTextContent('Catching up with the server');
    expect(region).toHaveTextContent('1 change received.');
  });
});

describe('refused changes on the ticket', () => {
  it('shows each with the server’s reason, until dismissed', async () => {
    desk.signInAs('agent');
    refuse(4, holdOn(4), 'the ticket is closed; its status is final');
    refuse(6, holdOn(6), 'not this one');
    goTo({ name: 'ticket', id: desk.tickets[3].id });
    await renderApp();
    await screen.findByRole('heading', { level: 1, name: /#4\b/ });

    const notices = await screen.findByRole('region', { name: 'Refused changes' });
    const notice = within(notices).getByRole('group', { name: 'Refused change: Put on hold' });
    expect(notice).toHaveTextContent('Your change ‘Put on hold’ was refused: the ticket is closed; its status is final.');
    expect(notices, 'only this ticket’s').not.toHaveTextContent('not this one');

    await userEvent.click(within(notice).getByRole('button', { name: 'Dismiss' }));
    await waitFor(() => expect(screen.queryByRole('region', { name: 'Refused changes' })).toBeNull());
    expect(desk.sync.rejections.map((r) => r.seq), 'Rust forgot it').toEqual([seq]);
  });

  it('shows a refused creation on its ticket, which does not exist', async () => {
    desk.signInAs('agent');
    const id = '00000000-0000-7000-8000-00000000ffff';
    desk.sync.rejections.push({
      seq: 1,
      ticket_id: id,
      intent: {
        op: 'ticket.create',
        args: { id, title: 'Broken chair', description: '', priority: null, category: null, customer_id: null, assignee_id: null },
      },
      code: 'forbidden',
      message: 'your role does not allow this',
      made_at: SYNCED_AT,
    });
    goTo({ name: 'ticket', id });
    await renderApp();
    expect(await screen.findByRole('heading', { level: 1, name: 'This ticket does not exist any more' })).toBeInTheDocument();
    expect(screen.getByRole('group', { name: 'Refused change: Create ticket “Broken chair”' })).toHaveTextContent(
      'Your change ‘Create ticket “Broken chair”’ was refused: your role does not allow this.',
    );
  });

  it('appears when a sync brings a refusal, without leaving the ticket', async () => {
    desk.signInAs('agent');
    goTo({ name: 'ticket', id: desk.tickets[1].id });
    await renderApp();
    await screen.findByRole('heading', { level: 1, name: /#2\b/ });
    expect(screen.queryByRole('region', { name: 'Refused changes' })).toBeNull();

    refuse(2, holdOn(2), 'the ticket was resolved meanwhile');
    desk.sync.status = status({ state: 'offline', unsent: 0 });
    // The push was answered, then the pull failed: the count moved, the last sync did not.
    await emit('sync-status', desk.syncStatus());
    expect(await screen.findByRole('group', { name: 'Refused change: Put on hold' })).toHaveTextContent('the ticket was resolved meanwhile.');
  });
});

describe('leaving the server with unsent changes', () => {
  const WARNING = '3 changes haven’t reached the server yet. Sign out anyway? They stay on this computer and are sent when you sign in to Acme Support again.';

  it('the account menu asks first, and Cancel stays signed in', async () => {
    desk.signInAs('agent');
    desk.sync.status = status({ state: 'offline', unsent: 3 });
    await renderApp();
    const signOut = vi.spyOn(desk.commands, 'signOut');
    await userEvent.click(screen.getByRole('button', { name: 'Account menu' }));
    await userEvent.click(screen.getByRole('menuitem', { name: 'Sign out' }));

    const dialog = await screen.findByRole('dialog', { name: 'Sign out with unsent changes?' });
    expect(dialog).toHaveAccessibleDescription(WARNING);
    await userEvent.click(within(dialog).getByRole('button', { name: 'Cancel' }));
    expect(signOut, 'Cancel keeps the session').not.toHaveBeenCalled();
    expect(screen.getByRole('button', { name: 'Account menu' })).toBeInTheDocument();

    await userEvent.click(screen.getByRole('button', { name: 'Account menu' }));
    await userEvent.click(screen.getByRole('menuitem', { name: 'Sign out' }));
    await userEvent.click(within(await screen.findByRole('dialog', { name: 'Sign out with unsent changes?' })).getByRole('button', { name: 'Sign out' }));
    await screen.findByRole('heading', { level: 1, name: 'Sign in to Tallydesk' });
    expect(signOut).toHaveBeenCalledOnce();
  });

  it('signs out at once when everything reached the server', async () => {
    desk.signInAs('agent');
    await renderApp();
    await userEvent.click(screen.getByRole('button', { name: 'Account menu' }));
    await userEvent.click(screen.getByRole('menuitem', { name: 'Sign out' }));
    await screen.findByRole('heading', { level: 1, name: 'Sign in to Tallydesk' });
  });

  it('the account panel asks before signing out and before disconnecting', async () => {
    desk.signInAs('agent');
    desk.sync.status = status({ state: 'offline', unsent: 1 });
    goTo({ name: 'settings' });
    await renderApp();
    const panel = screen.getByRole('region', { name: 'Account' });

    await userEvent.click(within(panel).getByRole('button', { name: 'Sign out' }));
    const asked = await screen.findByRole('dialog', { name: 'Sign out with unsent changes?' });
    expect(asked).toHaveAccessibleDescription(
      '1 change hasn’t reached the server yet. Sign out anyway? It stays on this computer and is sent when you sign in to Acme Support again.',
    );
    await userEvent.click(within(asked).getByRole('button', { name: 'Cancel' }));

    await userEvent.click(within(panel).getByRole('button', { name: 'Disconnect' }));
    const dialog = await screen.findByRole('dialog', { name: 'Disconnect with unsent changes?' });
    expect(dialog).toHaveAccessibleDescription(
      `1 change hasn’t reached the server yet. Disconnect anyway? It stays on this computer and is sent if you connect to ${SERVER_URL} and sign in to Acme Support again. Until then, Tallydesk works on this computer only.`,
    );
    await userEvent.click(within(dialog).getByRole('button', { name: 'Disconnect' }));
    await waitFor(() => expect(desk.auth.account.state).toBe('local'));
  });

  it('the sign-in screen asks before working offline, when Rust counts changes waiting', async () => {
    desk.signOutWith(null);
    desk.sync.status = status({ state: 'signed_out', unsent: 2 });
    await renderSignIn();
    await userEvent.click(screen.getByRole('button', { name: 'Work offline without a server' }));
    const dialog = await screen.findByRole('dialog', { name: 'Work offline with unsent changes?' });
    expect(dialog).toHaveAccessibleDescription(
      `2 changes haven’t reached the server yet. Work offline anyway? They stay on this computer and are sent if you connect to ${SERVER_URL} and sign in again.`,
    );
    expect(desk.auth.account.state, 'nothing happens before the answer').toBe('signed_out');
    await userEvent.click(within(dialog).getByRole('button', { name: 'Work offline' }));
    await screen.findByRole('navigation', { name: 'Views' });
    expect(desk.auth.account.state).toBe('local');
  });
});

describe('after a sync pulls a colleague’s edit', () => {
  it('the queue and the open ticket show it without anyone asking', async () => {
    desk.signInAs('agent');
    await renderApp();
    await screen.findByRole('link', { name: desk.tickets[11].title });

    desk.tickets[11].title = 'Printer fixed by Sam';
    await syncNow({ state: 'online', last_synced_at: '2025-01-06T09:05:00.000Z' });
    expect(await screen.findByRole('link', { name: 'Printer fixed by Sam' }), 'the queue read again').toBeInTheDocument();

    await userEvent.click(screen.getByRole('link', { name: 'Printer fixed by Sam' }));
    await screen.findByRole('heading', { level: 1, name: /Printer fixed by Sam/ });
    desk.tickets[11].title = 'Printer fixed by Sam, for good';
    await syncNow({ state: 'online', last_synced_at: '2025-01-06T09:06:00.000Z' });
    expect(await screen.findByRole('heading', { level: 1, name: /for good/ }), 'the ticket read again').toBeInTheDocument();
  });

  it('reads nothing again when only the unsent count moved', async () => {
    desk.signInAs('agent');
    await renderApp();
    await screen.findByRole('link', { name: desk.tickets[11].title });
    const list = vi.spyOn(desk.commands, 'listTickets');
    await syncNow({ state: 'online', unsent: 1 });
    await syncNow({ state: 'syncing', unsent: 1 });
    expect(await screen.findByRole('button', { name: 'Syncing…' })).toBeInTheDocument();
    expect(list, 'no sync finished, so nothing new was pulled').not.toHaveBeenCalled();
  });
});

describe('the words', () => {
  it('name each state, with counts', () => {
    expect(describeSync(status())).toEqual({ look: 'synced', label: 'Synced' });
    expect(describeSync(status({ state: 'syncing' }))).toEqual({ look: 'syncing', label: 'Syncing…' });
    expect(describeSync(status({ unsent: 2 })), 'a change just made is about to be sent').toEqual({ look: 'syncing', label: 'Syncing…' });
    expect(describeSync(status({ state: 'offline' })).label).toBe('Offline');
    expect(describeSync(status({ state: 'offline', unsent: 1200 })).label).toBe('Offline — 1,200 unsent changes');
    expect(describeSync(status({ state: 'offline', unsent: 1, rejected: 1 })).label).toBe('Offline — 1 unsent change, 1 change rejected');
    expect(describeSync(status({ rejected: 1 }))).toEqual({ look: 'rejected', label: '1 change rejected' });
    expect(describeSync(status({ state: 'signed_out' })), 'the sync starts just after the app opens').toEqual({
      look: 'syncing',
      label: 'Connecting…',
    });
    expect(describeSync(status({ state: 'signed_out', error: 'your session expired' }))).toEqual({ look: 'idle', label: 'Not syncing' });
  });

  it('name each kind of change', () => {
    const id = 't-1';
    expect(changeLabel({ op: 'ticket.update', args: { id, base_version: 3, priority: 'high', assignee_id: 'u-1' } })).toBe(
      'Change the priority and assignee',
    );
    expect(changeLabel({ op: 'ticket.transition', args: { id, to: 'resolved', reason: null } })).toBe('Resolve');
    expect(changeLabel({ op: 'comment.create', args: { id: 'c', ticket_id: id, body: 'x', internal: false } })).toBe('Reply');
    expect(changeLabel({ op: 'expense.decide', args: { id: 'e', ticket_id: id, approve: false, reason: 'no receipt' } })).toBe(
      'Reject the expense',
    );
  });

  it('say what happens to unsent changes when leaving', () => {
    expect(unsentWarning(1, 'work_offline', { server: SERVER_URL })).toBe(
      `1 change hasn’t reached the server yet. Work offline anyway? It stays on this computer and is sent if you connect to ${SERVER_URL} and sign in again.`,
    );
  });

  it('refresh the screens only when a sync finished or the refusals changed', () => {
    expect(staleAfter(status(), status({ last_synced_at: '2025-01-06T09:01:00.000Z' }))).toEqual([[]]);
    expect(staleAfter(undefined, status()), 'the first status after start: a sync may have pulled').toEqual([[]]);
    expect(staleAfter(status(), status({ rejected: 1 }))).toEqual([['sync-rejections']]);
    expect(staleAfter(status(), status({ state: 'syncing', unsent: 4 }))).toEqual([]);
    expect(staleAfter(undefined, status({ last_synced_at: null }))).toEqual([]);
  });
});

describe('a refused expense', () => {
  it('says the expense is a draft again, so nothing typed is lost', () => {
    const intent: Rejection['intent'] = {
      op: 'expense.create',
      args: {
        id: '0192f0a0-0000-7000-8000-000000000001',
        ticket_id: desk.tickets[0].id,
        merchant: 'Taxi Sud',
        spent_on: '2026-03-14',
        currency: 'EUR',
        amount_minor: 2300,
        subtotal_minor: null,
        tax_minor: null,
        category: 'travel',
        items: [],
        note: null,
        receipt: null,
      },
    };
    expect(refusal(intent, 'ticket #1 is resolved: file the expense on an open claim or a new one')).toBe(
      'Your change ‘File the expense from Taxi Sud’ was refused: ticket #1 is resolved: file the expense on an open claim or a new one. ' +
        'The expense is a draft again in Expenses: correct it and file it once more.',
    );
  });
});

import { screen, waitFor, within } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { FakeDesk } from './fake-desk';
import { goTo, installDesk, renderApp } from './harness';

vi.mock('../bindings', () => import('./fake-bindings'));

let desk: FakeDesk;

/** Opens ticket `number` (1-based) and waits for it. */
async function open(number: number) {
  goTo({ name: 'ticket', id: desk.tickets[number - 1].id });
  await renderApp();
  return screen.findByRole('heading', { level: 1, name: new RegExp(`#${number}\\b`) });
}

function statusActions() {
  return within(screen.getByRole('group', { name: 'Status actions' })).getAllByRole('button');
}

describe('a ticket', () => {
  beforeEach(() => {
    desk = installDesk({ tickets: 10 });
  });

  it('offers exactly the moves Rust allows, with their labels', async () => {
    const detail = vi.spyOn(desk.commands, 'viewTicket').mockImplementation((id) =>
      Promise.resolve({
        status: 'ok',
        data: {
          ticket: desk.tickets.find((t) => t.id === id)!,
          allowed_moves: ['closed', 'in_progress'],
          requester_name: 'Robin Lee',
          assignee_name: null,
          sla: null,
          customer_name: null,
        },
      }),
    );
    await open(4);
    expect(detail).toHaveBeenCalled();
    const buttons = statusActions();
    expect(buttons, 'the buttons are allowed_moves, not a list the UI works out').toHaveLength(2);
    expect(buttons[0]).toHaveAccessibleName('Close ticket');
    expect(buttons[1]).toHaveAccessibleName('Reopen');
    expect(screen.getByRole('button', { name: 'Close ticket' })).toHaveAttribute('aria-keyshortcuts', 'c');
    expect(screen.queryByRole('button', { name: 'Resolve' })).toBeNull();
  });

  it('names the moves by where the ticket is', async () => {
    await open(3); // on hold
    expect(statusActions().map((b) => b.getAttribute('aria-keyshortcuts'))).toEqual(['p']);
    expect(screen.getByRole('button', { name: 'Resume' })).toBeInTheDocument();
  });

  it('asks for a reason before putting a ticket on hold', async () => {
    const move = vi.spyOn(desk.commands, 'transitionTicket');
    await open(2); // in progress
    await userEvent.click(screen.getByRole('button', { name: 'Put on hold' }));

    const dialog = screen.getByRole('dialog', { name: 'Put on hold' });
    await userEvent.click(within(dialog).getByRole('button', { name: 'Put on hold' }));
    expect(within(dialog).getByRole('alert'), 'an empty reason is refused in place').toHaveTextContent(/reason/i);
    expect(move, 'nothing is sent without a reason').not.toHaveBeenCalled();

    await userEvent.type(within(dialog).getByRole('textbox', { name: 'Reason' }), 'Waiting for the new toner');
    await userEvent.click(within(dialog).getByRole('button', { name: 'Put on hold' }));

    expect(move).toHaveBeenCalledWith(desk.tickets[1].id, 'on_hold', 'Waiting for the new toner');
    await waitFor(() => expect(screen.queryByRole('dialog')).toBeNull());
    expect(await screen.findByRole('note', { name: 'Hold reason' })).toHaveTextContent('Waiting for the new toner');
    expect(screen.getByRole('button', { name: 'Resume' })).toBeInTheDocument();
  });

  it('shows the server’s message when a move is refused', async () => {
    vi.spyOn(desk.commands, 'transitionTicket').mockResolvedValue({
      status: 'error',
      error: { code: 'illegal_transition', message: 'a ticket that is closed cannot become resolved; a closed ticket is final', field: null },
    });
    await open(2);
    await userEvent.click(screen.getByRole('button', { name: 'Resolve' }));
    const message = await screen.findByText('A ticket that is closed cannot become resolved; a closed ticket is final.');
    expect(message.closest('[role="alert"]'), 'the refusal is announced').not.toBeNull();
  });

  it('starts work on an open ticket when it is opened', async () => {
    await open(1);
    expect(desk.tickets[0].status).toBe('in_progress');
    expect(screen.getByRole('button', { name: 'Put on hold' })).toBeInTheDocument();
  });

  it('marks internal notes, and sends replies and notes', async () => {
    const add = vi.spyOn(desk.commands, 'addComment');
    await open(2);

    await userEvent.type(screen.getByRole('textbox', { name: 'Reply' }), 'We are on it.');
    await userEvent.click(screen.getByRole('button', { name: 'Send' }));
    expect(add).toHaveBeenLastCalledWith(desk.tickets[1].id, 'We are on it.', false);

    await userEvent.type(screen.getByRole('textbox', { name: 'Reply' }), 'Toner is on back-order.');
    await userEvent.click(screen.getByRole('checkbox', { name: 'Internal note' }));
    await userEvent.click(screen.getByRole('button', { name: 'Send' }));
    expect(add).toHaveBeenLastCalledWith(desk.tickets[1].id, 'Toner is on back-order.', true);

    const note = await screen.findByRole('article', { name: 'Internal note by Alex Morgan' });
    expect(within(note).getByText('Internal note'), 'a note says it is one, in words').toBeInTheDocument();
    expect(note).toHaveTextContent('Toner is on back-order.');
    const reply = screen.getByRole('article', { name: 'Reply by Alex Morgan' });
    expect(within(reply).queryByText('Internal note'), 'a public reply is not marked as a note').toBeNull();
  });

  it('saves a field with the version it was read at, and reloads on a stale version', async () => {
    const update = vi.spyOn(desk.commands, 'updateTicket');
    await open(2);
    await userEvent.selectOptions(screen.getByRole('combobox', { name: 'Priority' }), 'Urgent');
    expect(update).toHaveBeenLastCalledWith(desk.tickets[1].id, { priority: 'urgent', version: 1 });
    await waitFor(() => expect(screen.getByRole('heading', { level: 1 }).nextElementSibling).toHaveTextContent('Urgent'));

    desk.tickets[1].version = 9; // someone else saved meanwhile
    await userEvent.selectOptions(screen.getByRole('combobox', { name: 'Priority' }), 'Low');
    await screen.findByText(/changed this ticket after you opened it/);
    await waitFor(() =>
      expect(screen.getByRole('combobox', { name: 'Priority' }), 'the reloaded ticket shows what is saved').toHaveValue('urgent'),
    );
  });

  it('moves to the next and previous ticket of the queue with j and k', async () => {
    goTo({ name: 'queue', view: 'all' });
    await renderApp();
    await userEvent.click(await screen.findByRole('link', { name: 'Shared drive is read-only' }));
    await screen.findByRole('heading', { level: 1, name: /#10\b/ });
    await userEvent.keyboard('j');
    await screen.findByRole('heading', { level: 1, name: /#9\b/ });
    await userEvent.keyboard('k');
    await screen.findByRole('heading', { level: 1, name: /#10\b/ });
    await userEvent.keyboard('{Escape}');
    await screen.findByRole('table', { name: 'Tickets' });
  });

  it('uses the status shortcuts only for allowed moves', async () => {
    const move = vi.spyOn(desk.commands, 'transitionTicket');
    await open(3); // on hold: only "Resume"
    await userEvent.keyboard('r');
    expect(move, 'resolving an on-hold ticket is not offered, so r does nothing').not.toHaveBeenCalled();
    await userEvent.keyboard('p');
    expect(move).toHaveBeenCalledWith(desk.tickets[2].id, 'in_progress', null);
  });
});

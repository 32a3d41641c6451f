// Screens show what the role allows, as Rust says in `workspace.can`; the members screen.

import { screen, waitFor, within } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { FakeDesk } from './fake-desk';
import { goTo, installDesk, renderApp } from './harness';

vi.mock('../bindings', () => import('./fake-bindings'));

let desk: FakeDesk;

beforeEach(() => {
  desk = installDesk({ tickets: 12 });
});

function sidebarLinks() {
  return within(screen.getByRole('navigation', { name: 'Views' }))
    .getAllByRole('link')
    .map((a) => a.textContent?.trim());
}

describe('role-appropriate screens', () => {
  it('give an observer a read-only queue and ticket', async () => {
    desk.signInAs('observer');
    await renderApp();
    await screen.findByRole('table', { name: 'Tickets' });
    expect(screen.queryByRole('button', { name: 'New ticket' }), 'an observer creates no tickets').toBeNull();
    expect(screen.queryByRole('button', { name: 'Add receipts…' }), 'nor expenses').toBeNull();
    await userEvent.keyboard('n');
    expect(screen.queryByRole('dialog', { name: 'New ticket' }), 'n does nothing for an observer').toBeNull();
    await userEvent.keyboard('?');
    const sheet = within(screen.getByRole('dialog', { name: 'Keyboard shortcuts' })).getByRole('table');
    expect(sheet).toHaveTextContent('Search tickets');
    expect(sheet, 'the sheet lists only keys that work for the role').not.toHaveTextContent('New ticket');
    expect(sheet).not.toHaveTextContent('Resolve');
    await userEvent.keyboard('{Escape}');

    goTo({ name: 'ticket', id: desk.tickets[1].id });
    await screen.findByRole('heading', { level: 1, name: /#2\b/ });
    expect(within(screen.getByRole('group', { name: 'Status actions' })).queryAllByRole('button')).toHaveLength(0);
    expect(screen.getByText('Your role can read this ticket but not change it.')).toBeInTheDocument();
    expect(screen.queryByRole('button', { name: 'Edit title and description' })).toBeNull();
    expect(screen.queryByRole('combobox', { name: 'Priority' }), 'properties are text, not selects').toBeNull();
    expect(screen.queryByRole('form', { name: 'Write a reply or an internal note' })).toBeNull();
    expect(screen.getByRole('heading', { name: 'Activity' }), 'an observer reads the activity').toBeInTheDocument();
  });

  it('give an admin the Members screen and every control', async () => {
    desk.signInAs('admin');
    await renderApp();
    expect(sidebarLinks()).toEqual(expect.arrayContaining(['Expenses', 'Customers', 'Members', 'Settings']));
    expect(screen.getByRole('button', { name: 'New ticket' })).toBeInTheDocument();
    goTo({ name: 'ticket', id: desk.tickets[0].id });
    await screen.findByRole('heading', { level: 1, name: /#1\b/ });
    expect(screen.getByRole('button', { name: 'Edit title and description' })).toBeInTheDocument();
    expect(screen.getByRole('checkbox', { name: 'Internal note' })).toBeInTheDocument();
  });

  it('give a requester no customers, members, internal notes or assignee', async () => {
    desk.signInAs('requester');
    await renderApp();
    expect(sidebarLinks()).not.toContain('Members');
    expect(sidebarLinks()).not.toContain('Customers');

    await userEvent.click(screen.getByRole('button', { name: 'New ticket' }));
    const dialog = screen.getByRole('dialog', { name: 'New ticket' });
    expect(within(dialog).queryByRole('combobox', { name: 'Assignee' })).toBeNull();
    expect(within(dialog).queryByRole('combobox', { name: 'Customer' })).toBeNull();
    await userEvent.keyboard('{Escape}');

    goTo({ name: 'ticket', id: desk.tickets[0].id });
    await screen.findByRole('heading', { level: 1, name: /#1\b/ });
    expect(screen.getByRole('form', { name: 'Write a reply or an internal note' })).toBeInTheDocument();
    expect(screen.queryByRole('checkbox', { name: 'Internal note' }), 'a requester writes replies only').toBeNull();
  });

  it('hide customer changes from an observer', async () => {
    desk.signInAs('observer');
    goTo({ name: 'customers' });
    await renderApp();
    await screen.findByRole('table', { name: 'Customers' });
    expect(screen.queryByRole('button', { name: 'New customer' })).toBeNull();
    goTo({ name: 'customer', id: desk.customers[0].id });
    await screen.findByRole('heading', { level: 1, name: 'Acme Corp' });
    expect(screen.queryByRole('button', { name: 'Edit customer' })).toBeNull();
    expect(screen.queryByRole('button', { name: 'Delete customer' })).toBeNull();
  });

  it('let an agent edit customers but not delete them', async () => {
    desk.signInAs('agent');
    goTo({ name: 'customer', id: desk.customers[0].id });
    await renderApp();
    await screen.findByRole('heading', { level: 1, name: 'Acme Corp' });
    expect(screen.getByRole('button', { name: 'Edit customer' })).toBeInTheDocument();
    expect(screen.queryByRole('button', { name: 'Delete customer' })).toBeNull();
  });
});

describe('the members screen', () => {
  const writeText = vi.fn<(text: string) => Promise<void>>();

  beforeEach(() => {
    writeText.mockReset().mockResolvedValue(undefined);
    Object.defineProperty(navigator, 'clipboard', { value: { writeText }, configurable: true });
  });

  afterEach(() => {
    Reflect.deleteProperty(navigator, 'clipboard');
  });

  async function openMembers() {
    goTo({ name: 'members' });
    await renderApp();
    return screen.findByRole('table', { name: 'Members' });
  }

  it('explains where members live in a local workspace', async () => {
    goTo({ name: 'members' });
    await renderApp();
    expect(await screen.findByText('Members live on a Tallydesk server. Connect to one in Settings.')).toBeInTheDocument();
    expect(screen.queryByRole('table', { name: 'Members' })).toBeNull();
    await userEvent.click(screen.getByRole('link', { name: 'Open Settings' }));
    expect(await screen.findByRole('region', { name: 'Account' })).toBeInTheDocument();
  });

  it('lists the members with their roles, read-only for an observer', async () => {
    desk.signInAs('observer');
    const table = await openMembers();
    const rows = within(table).getAllByRole('row').slice(1);
    expect(rows.map((r) => within(r).getAllByRole('cell').map((c) => c.textContent?.trim()))).toEqual([
      ['Alex Morgan You', 'alex@example.com', 'Admin'],
      ['Sam Rivera', 'sam@example.com', 'Agent'],
      ['Robin Lee', 'robin@example.com', 'Requester'],
    ]);
    expect(within(table).queryByRole('combobox')).toBeNull();
    expect(within(table).queryByRole('button')).toBeNull();
    expect(screen.queryByRole('button', { name: 'Invite member' })).toBeNull();
  });

  it('changes a member’s role', async () => {
    desk.signInAs('admin');
    const setRole = vi.spyOn(desk.commands, 'setMemberRole');
    const table = await openMembers();
    await userEvent.selectOptions(within(table).getByRole('combobox', { name: 'Role of Sam Rivera' }), 'Admin');
    expect(setRole).toHaveBeenCalledWith(desk.sam.id, 'admin');
    expect(await screen.findByText('Sam Rivera is now admin')).toBeInTheDocument();
    expect(within(table).getByRole('combobox', { name: 'Role of Sam Rivera' })).toHaveDisplayValue('Admin');
  });

  it('shows Rust’s refusal inline and keeps the role as it was', async () => {
    desk.signInAs('admin');
    const table = await openMembers();
    const mine = within(table).getByRole('combobox', { name: 'Role of Alex Morgan' });
    await userEvent.selectOptions(mine, 'Agent');
    const refusal = await screen.findByText('The last admin cannot stop being an admin; make someone else admin first.');
    expect(refusal.closest('[role="alert"]'), 'the refusal is announced').not.toBeNull();
    expect(mine, 'nothing half-saved: the select shows the role still held').toHaveDisplayValue('Admin');
    expect(desk.members[0].role).toBe('admin');
  });

  it('removes a member after confirming', async () => {
    desk.signInAs('admin');
    const table = await openMembers();
    expect(within(table).queryByRole('button', { name: 'Remove Alex Morgan' }), 'not oneself').toBeNull();
    await userEvent.click(within(table).getByRole('button', { name: 'Remove Robin Lee' }));
    const dialog = screen.getByRole('dialog', { name: 'Remove Robin Lee?' });
    await userEvent.click(within(dialog).getByRole('button', { name: 'Remove member' }));
    await waitFor(() => expect(within(table).queryByText('Robin Lee')).toBeNull());
    expect(desk.members.map((m) => m.name)).toEqual(['Alex Morgan', 'Sam Rivera']);
  });

  it('invites by email with a role, showing Rust’s field error, then the link to send', async () => {
    desk.signInAs('admin');
    const invite = vi.spyOn(desk.commands, 'inviteMember');
    await openMembers();
    await userEvent.click(screen.getByRole('button', { name: 'Invite member' }));
    const dialog = screen.getByRole('dialog', { name: 'Invite a member' });
    const email = within(dialog).getByRole('textbox', { name: 'Email' });
    await waitFor(() => expect(email, 'the email field gets focus').toHaveFocus());

    await userEvent.type(email, 'jo at example');
    await userEvent.selectOptions(within(dialog).getByRole('combobox', { name: 'Role' }), 'Observer');
    await userEvent.click(within(dialog).getByRole('button', { name: 'Invite' }));
    expect(await within(dialog).findByRole('alert')).toHaveTextContent('"jo at example" is not an email address.');
    expect(email).toHaveAttribute('aria-invalid', 'true');
    expect(desk.invitations, 'nothing was created').toHaveLength(0);

    await userEvent.clear(email);
    await userEvent.type(email, 'jo@example.com');
    await userEvent.click(within(dialog).getByRole('button', { name: 'Invite' }));
    expect(invite).toHaveBeenLastCalledWith('jo@example.com', 'observer');
    const link = await within(dialog).findByRole('textbox', { name: 'Invitation link' });
    expect(link).toHaveValue(`https://desk.example.com/accept/${desk.invitations[0].id}`);
    await userEvent.click(within(dialog).getByRole('button', { name: 'Copy link' }));
    expect(writeText).toHaveBeenCalledWith(`https://desk.example.com/accept/${desk.invitations[0].id}`);
    await userEvent.click(within(dialog).getByRole('button', { name: 'Done' }));

    const pending = await screen.findByRole('table', { name: 'Pending invitations' });
    const row = within(pending).getAllByRole('row')[1];
    expect(row).toHaveTextContent('jo@example.com');
    expect(row).toHaveTextContent('Observer');
  });

  it('shows at the email that its owner is already a member, or already invited', async () => {
    desk.signInAs('admin');
    await desk.commands.inviteMember('kim@example.com', 'agent');
    await openMembers();
    await userEvent.click(screen.getByRole('button', { name: 'Invite member' }));
    const dialog = screen.getByRole('dialog', { name: 'Invite a member' });
    const email = within(dialog).getByRole('textbox', { name: 'Email' });

    await userEvent.type(email, 'sam@example.com');
    await userEvent.click(within(dialog).getByRole('button', { name: 'Invite' }));
    expect(await within(dialog).findByRole('alert')).toHaveTextContent('Someone with this email is already a member.');
    expect(email, '`already_member` names no field, yet it is about the email').toHaveAttribute('aria-invalid', 'true');
    await waitFor(() => expect(email, 'focus goes to the address to change').toHaveFocus());

    await userEvent.clear(email);
    await userEvent.type(email, 'kim@example.com');
    await userEvent.click(within(dialog).getByRole('button', { name: 'Invite' }));
    await waitFor(() => expect(within(dialog).getByRole('alert')).toHaveTextContent('This email already has a pending invitation to this tenant.'));
    expect(email).toHaveAttribute('aria-invalid', 'true');
    expect(desk.invitations, 'nothing was created').toHaveLength(1);
  });

  it('revokes a pending invitation', async () => {
    desk.signInAs('admin');
    await desk.commands.inviteMember('kim@example.com', 'agent');
    const id = desk.invitations[0].id;
    const revoke = vi.spyOn(desk.commands, 'revokeInvitation');
    await openMembers();
    const pending = await screen.findByRole('table', { name: 'Pending invitations' });
    await userEvent.click(within(pending).getByRole('button', { name: 'Revoke invitation for kim@example.com' }));
    expect(revoke).toHaveBeenCalledWith(id);
    await screen.findByText('No pending invitations. “Invite member” adds one.');
    expect(desk.invitations).toHaveLength(0);
  });

  it('says so when the invitation was accepted before it could be revoked, and drops it', async () => {
    desk.signInAs('admin');
    await desk.commands.inviteMember('kim@example.com', 'agent');
    await openMembers();
    const pending = await screen.findByRole('table', { name: 'Pending invitations' });
    desk.invitations[0].accepted_at = new Date().toISOString();
    await userEvent.click(within(pending).getByRole('button', { name: 'Revoke invitation for kim@example.com' }));
    const refusal = await within(screen.getByRole('region', { name: 'Pending invitations' })).findByText('This invitation was already accepted: remove the member instead.');
    expect(refusal.closest('[role="alert"]'), 'the refusal is announced, beside the list').not.toBeNull();
    expect(await screen.findByText('No pending invitations. “Invite member” adds one.'), 'the list is read again').toBeInTheDocument();
  });
});

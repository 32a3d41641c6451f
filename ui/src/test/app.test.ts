import { render, screen, waitFor, within } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import App from '../App.svelte';
import type { FakeDesk } from './fake-desk';
import { goTo, installDesk, renderApp } from './harness';

vi.mock('../bindings', () => import('./fake-bindings'));

let desk: FakeDesk;

beforeEach(() => {
  desk = installDesk({ tickets: 20 });
});

describe('the new ticket dialog', () => {
  it('opens with n and creates the ticket, then shows it', async () => {
    const create = vi.spyOn(desk.commands, 'createTicket');
    await renderApp();
    await userEvent.keyboard('n');
    const dialog = screen.getByRole('dialog', { name: 'New ticket' });
    await waitFor(() => expect(within(dialog).getByRole('textbox', { name: 'Title' }), 'the title field gets focus').toHaveFocus());

    await userEvent.type(within(dialog).getByRole('textbox', { name: 'Title' }), 'Scanner offline');
    await userEvent.type(within(dialog).getByRole('textbox', { name: 'Description' }), 'Since Monday.');
    await userEvent.selectOptions(within(dialog).getByRole('combobox', { name: 'Priority' }), 'High');
    await userEvent.selectOptions(within(dialog).getByRole('combobox', { name: 'Category' }), 'Hardware');
    await userEvent.selectOptions(within(dialog).getByRole('combobox', { name: 'Customer' }), 'Globex');
    await userEvent.selectOptions(within(dialog).getByRole('combobox', { name: 'Assignee' }), 'Sam Rivera');
    await userEvent.click(within(dialog).getByRole('button', { name: 'Create ticket' }));

    expect(create).toHaveBeenCalledWith({
      title: 'Scanner offline',
      description: 'Since Monday.',
      priority: 'high',
      category: 'hardware',
      customer_id: desk.customers[1].id,
      assignee_id: desk.sam.id,
      requester_id: null,
    });
    await screen.findByRole('heading', { level: 1, name: /#21 Scanner offline/ });
    expect(screen.queryByRole('dialog')).toBeNull();
  });

  it('shows the field error Rust gives and keeps what was typed', async () => {
    vi.spyOn(desk.commands, 'createTicket').mockResolvedValue({
      status: 'error',
      error: { code: 'invalid_field', message: 'title is too long: at most 200 characters, got 201', field: 'title' },
    });
    await renderApp();
    await userEvent.click(screen.getByRole('button', { name: 'New ticket' }));
    const dialog = screen.getByRole('dialog', { name: 'New ticket' });
    const title = within(dialog).getByRole('textbox', { name: 'Title' });
    const long = 'x'.repeat(201);
    await userEvent.click(title);
    await userEvent.paste(long);
    expect(within(dialog).getByText('201/200'), 'a live counter shows the length').toBeInTheDocument();
    await userEvent.click(within(dialog).getByRole('button', { name: 'Create ticket' }));

    const error = await within(dialog).findByText('Title is too long: at most 200 characters, got 201.');
    expect(title, 'the error is tied to its field').toHaveAccessibleDescription(expect.stringContaining('Title is too long'));
    expect(title).toHaveAttribute('aria-invalid', 'true');
    expect(title, 'what was typed stays').toHaveValue(long);
    expect(error).toBeVisible();
    expect(screen.getByRole('dialog', { name: 'New ticket' }), 'the dialog stays open').toBeInTheDocument();
  });

  it('closes with Escape and gives focus back', async () => {
    await renderApp();
    const button = screen.getByRole('button', { name: 'New ticket' });
    await userEvent.click(button);
    expect(screen.getByRole('dialog', { name: 'New ticket' })).toBeInTheDocument();
    await userEvent.keyboard('{Escape}');
    expect(screen.queryByRole('dialog')).toBeNull();
    expect(button).toHaveFocus();
  });
});

describe('keyboard shortcuts', () => {
  it('opens the help sheet with ?', async () => {
    await renderApp();
    await userEvent.keyboard('?');
    const help = screen.getByRole('dialog', { name: 'Keyboard shortcuts' });
    expect(within(help).getByRole('table')).toHaveTextContent('New ticket');
  });

  it('focuses the search with / and Ctrl+K', async () => {
    await renderApp();
    const search = screen.getByRole('searchbox', { name: 'Search tickets' });
    await userEvent.keyboard('/');
    expect(search).toHaveFocus();
    search.blur();
    await userEvent.keyboard('{Control>}k{/Control}');
    expect(search).toHaveFocus();
  });

  it('does not fire while typing in a field', async () => {
    await renderApp();
    await userEvent.type(screen.getByRole('searchbox', { name: 'Search tickets' }), 'n?');
    expect(screen.queryByRole('dialog'), 'typing n and ? in a field types them').toBeNull();
  });
});

describe('settings', () => {
  it('switches to dark mode and saves the theme', async () => {
    const save = vi.spyOn(desk.commands, 'setPreferences');
    goTo({ name: 'settings' });
    await renderApp();
    const theme = screen.getByRole('radiogroup', { name: 'Theme' });
    await userEvent.click(within(theme).getByRole('radio', { name: 'Dark' }));

    expect(document.documentElement, 'the page switches at once').toHaveAttribute('data-theme', 'dark');
    await waitFor(() => expect(save).toHaveBeenCalledWith(expect.objectContaining({ theme: 'dark' })));
    expect(within(theme).getByRole('radio', { name: 'Dark' })).toBeChecked();

    await userEvent.click(within(theme).getByRole('radio', { name: 'Light' }));
    expect(document.documentElement).toHaveAttribute('data-theme', 'light');
  });

  it('switches density', async () => {
    goTo({ name: 'settings' });
    await renderApp();
    const density = screen.getByRole('radiogroup', { name: 'Density' });
    expect(within(density).getByRole('radio', { name: 'Comfortable' })).toBeChecked();
    await userEvent.click(within(density).getByRole('radio', { name: 'Compact' }));
    expect(document.documentElement).toHaveAttribute('data-density', 'compact');
  });

  it('shows the field error for a server URL Rust refuses', async () => {
    goTo({ name: 'settings' });
    await renderApp();
    const url = await screen.findByRole('textbox', { name: 'Server URL' });
    await userEvent.type(url, 'ftp://desk');
    await userEvent.click(screen.getByRole('button', { name: 'Connect' }));
    await screen.findByText('Server URL: start it with https:// (or http:// for a local server).');
    expect(url).toHaveAttribute('aria-invalid', 'true');
    expect(url).toHaveValue('ftp://desk');
  });

  it('shows the version and the data directory', async () => {
    goTo({ name: 'settings' });
    await renderApp();
    await screen.findByText('Tallydesk 0.1.0');
    expect(screen.getByText('/home/alex/.local/share/app.tallydesk.desktop')).toBeInTheDocument();
  });
});

describe('the last view', () => {
  it('is saved when the view changes and restored on start', async () => {
    const save = vi.spyOn(desk.commands, 'setPreferences');
    await renderApp();
    await userEvent.click(screen.getByRole('link', { name: 'Customers' }));
    await waitFor(() => expect(save).toHaveBeenCalledWith(expect.objectContaining({ last_view: 'customers' })), { timeout: 2000 });
  });

  it('comes back after a restart', async () => {
    await desk.commands.setPreferences({ theme: 'system', density: 'compact', server_url: '', last_view: 'queue/on_hold' });
    history.replaceState(null, '', '#');
    await renderApp();
    await screen.findByRole('heading', { level: 1, name: 'On hold' });
    expect(document.documentElement).toHaveAttribute('data-density', 'compact');
  });

  it('comes back with the preferences Rust hands the page, reading its tickets at once', async () => {
    const given = { theme: 'dark', density: 'compact', server_url: '', last_view: 'queue/on_hold' };
    Object.assign(globalThis, { __TALLYDESK_PREFERENCES__: given });
    try {
      const read = vi.spyOn(desk.commands, 'getPreferences');
      const list = vi.spyOn(desk.commands, 'listTickets');
      const openWorkspace = desk.commands.openWorkspace;
      let listedBeforeOpen = false;
      vi.spyOn(desk.commands, 'openWorkspace').mockImplementation(async () => {
        const opened = await openWorkspace();
        listedBeforeOpen = list.mock.calls.length > 0;
        return opened;
      });
      history.replaceState(null, '', '#');
      await renderApp();
      await screen.findByRole('heading', { level: 1, name: 'On hold' });
      expect(document.documentElement).toHaveAttribute('data-theme', 'dark');
      expect(document.documentElement).toHaveAttribute('data-density', 'compact');
      expect(read, 'the preferences are not asked for again').not.toHaveBeenCalled();
      expect(list).toHaveBeenCalledWith(expect.objectContaining({ view: 'on_hold' }));
      expect(listedBeforeOpen, 'the tickets are asked for beside the workspace, not after it').toBe(true);
    } finally {
      delete (globalThis as { __TALLYDESK_PREFERENCES__?: unknown }).__TALLYDESK_PREFERENCES__;
    }
  });
});

describe('demo data', () => {
  it('is marked, and removed after confirming', async () => {
    const remove = vi.spyOn(desk.commands, 'removeDemoData');
    await renderApp();
    expect(screen.getByText('You are looking at demo data')).toBeInTheDocument();
    await userEvent.click(screen.getByRole('button', { name: 'Remove demo data' }));
    const confirm = screen.getByRole('dialog', { name: 'Remove demo data' });
    expect(remove, 'nothing is removed before confirming').not.toHaveBeenCalled();
    await userEvent.click(within(confirm).getByRole('button', { name: 'Remove demo data' }));
    expect(remove).toHaveBeenCalled();
    await waitFor(() => expect(screen.queryByText('You are looking at demo data')).toBeNull());
    await screen.findByText('0 tickets');
  });
});

describe('customers', () => {
  it('lists, creates and deletes a customer', async () => {
    goTo({ name: 'customers' });
    await renderApp();
    await screen.findByRole('link', { name: 'Acme Corp' });
    await userEvent.click(screen.getByRole('button', { name: 'New customer' }));
    const dialog = screen.getByRole('dialog', { name: 'New customer' });
    await userEvent.click(within(dialog).getByRole('button', { name: 'Create customer' }));
    expect(await within(dialog).findByText('Name must not be empty.')).toBeInTheDocument();
    await userEvent.type(within(dialog).getByRole('textbox', { name: 'Name' }), 'Umbrella');
    await userEvent.click(within(dialog).getByRole('button', { name: 'Create customer' }));
    await screen.findByRole('heading', { level: 1, name: 'Umbrella' });

    await userEvent.click(screen.getByRole('button', { name: 'Delete customer' }));
    const confirm = screen.getByRole('dialog', { name: 'Delete customer' });
    await userEvent.click(within(confirm).getByRole('button', { name: 'Delete customer' }));
    await screen.findByRole('heading', { level: 1, name: 'Customers' });
    expect(desk.customers.map((c) => c.name)).not.toContain('Umbrella');
  });
});

describe('a workspace that cannot be opened', () => {
  it('explains a corrupt database and starts a fresh workspace, keeping the old file', async () => {
    vi.spyOn(desk.commands, 'openWorkspace').mockResolvedValue({
      status: 'error',
      error: { code: 'database_corrupt', message: 'the workspace database is damaged or is not a Tallydesk database', field: null },
    });
    const fresh = vi.spyOn(desk.commands, 'startFreshWorkspace');
    render(App);

    await screen.findByRole('heading', { name: 'Your workspace could not be opened' });
    expect(screen.getByText('The workspace database is damaged or is not a Tallydesk database.')).toBeInTheDocument();
    await userEvent.click(screen.getByRole('button', { name: 'Start a fresh workspace' }));
    expect(fresh).toHaveBeenCalled();

    await screen.findByRole('heading', { name: 'A fresh workspace is ready' });
    expect(screen.getByText('/data/workspace.db.corrupt-1'), 'the user learns where the old file is').toBeInTheDocument();
    await userEvent.click(screen.getByRole('button', { name: 'Continue' }));
    await screen.findByRole('navigation', { name: 'Views' });
  });

  it('offers to try again when the database is locked', async () => {
    const open = vi.spyOn(desk.commands, 'openWorkspace').mockResolvedValueOnce({
      status: 'error',
      error: { code: 'database_locked', message: 'the workspace database is in use by another program', field: null },
    });
    render(App);
    await screen.findByRole('heading', { name: 'Your workspace is in use' });
    expect(screen.getByRole('button', { name: 'Start a fresh workspace' })).toBeInTheDocument();
    await userEvent.click(screen.getByRole('button', { name: 'Try again' }));
    await screen.findByRole('navigation', { name: 'Views' });
    expect(open).toHaveBeenCalledTimes(2);
  });
});

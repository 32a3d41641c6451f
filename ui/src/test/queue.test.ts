import { fireEvent, screen, waitFor, within } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { installDesk, renderApp } from './harness';

vi.mock('../bindings', () => import('./fake-bindings'));

function dataRows() {
  const table = screen.getByRole('table', { name: 'Tickets' });
  return within(table)
    .getAllByRole('row')
    .filter((row) => row.hasAttribute('data-index'));
}

describe('the queue', () => {
  beforeEach(() => {
    installDesk({ tickets: 250 });
  });

  it('shows the total and renders only the rows in view, paging in more on scroll', async () => {
    const desk = installDesk({ tickets: 250 });
    const list = vi.spyOn(desk.commands, 'listTickets');
    await renderApp();

    await screen.findByText('250 tickets');
    const first = dataRows();
    expect(first[0]).toHaveTextContent('#250');
    expect(first.length, 'a virtualised list renders a window of rows, not the whole page of 100').toBeLessThan(100);
    expect(list).toHaveBeenCalledTimes(1);
    expect(list.mock.calls[0][0]).toMatchObject({ view: 'all', cursor: null, limit: 100 });

    const table = screen.getByRole('table', { name: 'Tickets' });
    const scroller = table.parentElement!;
    scroller.scrollTop = 100 * 44 - 600;
    await fireEvent.scroll(scroller);

    await waitFor(() => expect(list, 'nearing the end of the loaded rows fetches the next page').toHaveBeenCalledTimes(2));
    expect(list.mock.calls[1][0]).toMatchObject({ cursor: '100', limit: 100 });

    scroller.scrollTop = 150 * 44;
    await fireEvent.scroll(scroller);
    await waitFor(() => expect(screen.getByRole('link', { name: 'Laptop battery drains overnight (93)' })).toBeInTheDocument());
    expect(screen.queryByRole('link', { name: 'Laptop battery drains overnight (243)' }), 'rows scrolled away are not rendered').toBeNull();
  });

  it('shows a row with number, title, status, priority, assignee and customer', async () => {
    await renderApp();
    const row = (await screen.findByRole('link', { name: 'Shared drive is read-only (250)' })).closest('tr')!;
    expect(row).toHaveTextContent('#250');
    expect(row).toHaveTextContent('Closed');
    expect(row).toHaveTextContent('Medium');
    expect(row).toHaveTextContent('Unassigned');
    expect(row).toHaveTextContent('Acme Corp');
  });

  it('searches with the text typed into the search box', async () => {
    const desk = installDesk({ tickets: 250 });
    const list = vi.spyOn(desk.commands, 'listTickets');
    await renderApp();
    await screen.findByText('250 tickets');

    await userEvent.type(screen.getByRole('searchbox', { name: 'Search tickets' }), 'battery');

    await waitFor(() =>
      expect(list, 'the search reaches Rust as the query’s search').toHaveBeenLastCalledWith(expect.objectContaining({ search: 'battery' })),
    );
    expect(
      list.mock.calls.filter(([q]) => q.search && q.search !== 'battery'),
      'typing is debounced: no query per keystroke',
    ).toHaveLength(0);
    await screen.findByText(/25 tickets matching/);
  });

  it('filters by status through the query', async () => {
    const desk = installDesk({ tickets: 250 });
    const list = vi.spyOn(desk.commands, 'listTickets');
    await renderApp();
    await screen.findByText('250 tickets');
    await userEvent.selectOptions(screen.getByRole('combobox', { name: 'Status' }), 'On hold');
    await waitFor(() => expect(list).toHaveBeenLastCalledWith(expect.objectContaining({ status: 'on_hold' })));
    await screen.findByText('50 tickets');
  });

  it('says so when nothing matches, and offers to clear the filters', async () => {
    await renderApp();
    await screen.findByText('250 tickets');
    await userEvent.type(screen.getByRole('searchbox', { name: 'Search tickets' }), 'zebra{Enter}');
    await screen.findByText('No tickets match.');
    await userEvent.click(screen.getByRole('button', { name: 'Show all tickets' }));
    await screen.findByText('250 tickets');
  });

  it('moves the selection with j and k, and opens it with Enter', async () => {
    const desk = installDesk({ tickets: 250 });
    const view = vi.spyOn(desk.commands, 'viewTicket');
    await renderApp();
    await screen.findByText('250 tickets');
    const current = () => dataRows().find((r) => r.getAttribute('aria-current') === 'true');
    expect(current()).toHaveTextContent('#250');

    await userEvent.keyboard('jj');
    expect(current(), 'j selects the next row').toHaveTextContent('#248');
    await userEvent.keyboard('k');
    expect(current(), 'k selects the previous row').toHaveTextContent('#249');

    await userEvent.keyboard('{Enter}');
    await screen.findByRole('heading', { level: 1, name: /#249/ });
    expect(view, 'opening a ticket views it').toHaveBeenCalledWith(desk.tickets[248].id);
  });

  it('shows the view counts in the sidebar and switches views', async () => {
    const desk = installDesk({ tickets: 250 });
    const list = vi.spyOn(desk.commands, 'listTickets');
    await renderApp();
    const nav = screen.getByRole('navigation', { name: 'Views' });
    const onHold = within(nav).getByRole('link', { name: 'On hold' });
    await waitFor(() => expect(onHold).toHaveAccessibleDescription('50 tickets'));
    await userEvent.click(onHold);
    expect(onHold).toHaveAttribute('aria-current', 'page');
    await screen.findByRole('heading', { level: 1, name: 'On hold' });
    await waitFor(() => expect(list).toHaveBeenLastCalledWith(expect.objectContaining({ view: 'on_hold' })));
  });
});

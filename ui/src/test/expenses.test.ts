import { fireEvent, screen, waitFor, within } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import { emit } from '@tauri-apps/api/event';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { Reading } from '../lib/ipc';
import type { FakeDesk } from './fake-desk';
import { goTo, installDesk, renderApp } from './harness';

vi.mock('../bindings', () => import('./fake-bindings'));

let desk: FakeDesk;

beforeEach(() => {
  desk = installDesk({ tickets: 12 });
});

const quad = (x: number, y: number, w = 200, h = 20) => [x, y, x + w, y, x + w, y + h, x, y + h];

/** A receipt as the reader saw it: the merchant on line 0 (unsure), the date on 1, the total on 3. */
const READING: Reading = {
  width: 400,
  height: 800,
  lines: [
    { text: 'BOOK TA _K SDN BHD', confidence: 0.6, quad: quad(20, 20) },
    { text: '25/12/2018', confidence: 0.95, quad: quad(20, 60) },
    { text: 'KF MODELLING CLAY 9.00', confidence: 0.9, quad: quad(20, 300) },
    { text: 'TOTAL 9.00', confidence: 0.9, quad: quad(20, 700) },
  ],
  fields: [
    { field: 'merchant', confidence: 0.58, uncertain: true, lines: [0] },
    { field: 'spent_on', confidence: 0.93, uncertain: false, lines: [1] },
    { field: 'total', confidence: 0.83, uncertain: false, lines: [3] },
    { field: 'items.0', confidence: 0.5, uncertain: true, lines: [2] },
  ],
};

/** Who files the expenses an approver decides: someone else (nobody decides their own). */
function filedBySomeoneElse() {
  const other = desk.people.find((p) => p.id !== desk.me.id);
  if (!other) throw new Error('the fake desk seeds other people');
  return { requester_id: other.id, requester_name: other.name };
}

function draft(fields = {}) {
  return desk.addExpense(
    {
      merchant: 'BOOK TA _K SDN BHD',
      spent_on: '2018-12-25',
      currency: 'MYR',
      total: '9.00',
      items: [{ description: 'KF MODELLING CLAY', quantity: '1', amount: '9.00' }],
      source_name: '000.jpg',
      ...fields,
    },
    READING,
  );
}

async function openReview(id: string) {
  goTo({ name: 'expense', id });
  await renderApp();
  await screen.findByRole('heading', { level: 1, name: 'Review receipt' });
}

/** Sends the window an event as the system does (once the app listens for it). */
async function windowEvent(name: 'drag-enter' | 'drag-over' | 'drag-drop' | 'drag-leave', payload: unknown) {
  await waitFor(() => expect(document.documentElement.dataset.drops).toBe('ready'));
  await emit(`tauri://${name}`, payload);
}

const drop = (paths: string[]) => windowEvent('drag-drop', { paths, position: { x: 10, y: 10 } });

describe('dropping receipts', () => {
  it('shows what dropping does while files are over the window, then reads what was dropped', async () => {
    await renderApp();
    await windowEvent('drag-enter', { paths: ['/home/alex/a.jpg'], position: { x: 10, y: 10 } });
    expect(await screen.findByText('Drop receipts to read them'), 'the whole window says it takes the drop').toBeVisible();

    await windowEvent('drag-leave', null);
    await waitFor(() => expect(screen.queryByText('Drop receipts to read them'), 'dragging away hides it').toBeNull());

    await windowEvent('drag-enter', { paths: ['/home/alex/a.jpg'], position: { x: 10, y: 10 } });
    await drop(['/home/alex/a.jpg', '/home/alex/notes.jpg']);
    await waitFor(() => expect(screen.queryByText('Drop receipts to read them')).toBeNull());
    expect(desk.scans.map((s) => s.paths), 'the dropped paths go to Rust as they are').toEqual([['/home/alex/a.jpg', '/home/alex/notes.jpg']]);
  });

  it('lists every file with its step, then Read with a way to review it, or why it failed', async () => {
    await renderApp();
    await drop(['/home/alex/receipts']);
    const scan = desk.scans[0];
    const tray = await screen.findByRole('region', { name: 'Receipts' });

    scan.send({ kind: 'started', files: [{ name: 'a.jpg', path: '/home/alex/receipts/a.jpg' }, { name: 'notes.jpg', path: '/home/alex/receipts/notes.jpg' }] });
    scan.send({ kind: 'progress', index: 0, stage: 'reading_text', fraction: 0.5 });
    const first = await within(tray).findByRole('listitem', { name: 'a.jpg' });
    const second = within(tray).getByRole('listitem', { name: 'notes.jpg' });
    await waitFor(() => expect(first, 'the step is said in words').toHaveTextContent('Reading the text'));
    expect(within(first).getByRole('progressbar', { name: 'Reading a.jpg' })).toHaveValue(0.5);
    expect(second, 'files after the one being read wait their turn').toHaveTextContent('Waiting');

    const expense = draft();
    scan.send({ kind: 'read', index: 0, expense });
    scan.send({
      kind: 'failed',
      index: 1,
      error: { code: 'unreadable_file', message: 'not an image (supported: JPEG, PNG, WebP, TIFF, BMP, GIF)', field: 'not_an_image' },
    });
    scan.send({ kind: 'finished', read: 1, failed: 1 });
    scan.done();

    await waitFor(() => expect(first).toHaveTextContent('Read'));
    expect(first, 'what was read is summed up').toHaveTextContent('BOOK TA _K SDN BHD');
    expect(second, 'a file that failed says why, and the batch went on').toHaveTextContent(
      'Not read: Not an image (supported: JPEG, PNG, WebP, TIFF, BMP, GIF).',
    );
    expect(within(second).queryByRole('button', { name: /Review/ })).toBeNull();
    expect(within(tray).getByText('1 receipt read, 1 could not be read'), 'the tray sums the drop up').toBeInTheDocument();
    expect(screen.getByText('1 receipt read, 1 could not be read.', { selector: '[role="status"]' }), 'the summary is announced').toBeInTheDocument();

    await userEvent.click(within(first).getByRole('button', { name: 'Review a.jpg' }));
    await screen.findByRole('heading', { level: 1, name: 'Review receipt' });
    expect(screen.getByRole('textbox', { name: 'Merchant' })).toHaveValue('BOOK TA _K SDN BHD');
  });

  it('queues a second drop behind the first', async () => {
    await renderApp();
    await drop(['/a.jpg']);
    await drop(['/b.jpg']);
    expect(desk.scans).toHaveLength(2);
    desk.scans[0].send({ kind: 'started', files: [{ name: 'a.jpg', path: '/a.jpg' }] });
    desk.scans[1].send({ kind: 'started', files: [{ name: 'b.jpg', path: '/b.jpg' }] });
    desk.scans[0].send({ kind: 'progress', index: 0, stage: 'loading_models', fraction: 0 });
    const tray = await screen.findByRole('region', { name: 'Receipts' });
    await waitFor(() => expect(within(tray).getByRole('listitem', { name: 'a.jpg' })).toHaveTextContent('Starting the receipt reader'));
    expect(within(tray).getByRole('listitem', { name: 'b.jpg' })).toHaveTextContent('Waiting');
    expect(within(tray).getByText('Reading receipts: 0 of 2 done')).toBeInTheDocument();
  });

  it('reads the files picked with the a shortcut', async () => {
    await renderApp();
    desk.pick(['/home/alex/taxi.png']);
    await userEvent.keyboard('a');
    await waitFor(() => expect(desk.scans.map((s) => s.paths)).toEqual([['/home/alex/taxi.png']]));
    await userEvent.keyboard('?');
    expect(within(screen.getByRole('dialog', { name: 'Keyboard shortcuts' })).getByRole('table')).toHaveTextContent('Add receipts');
  });

  it('does nothing when the chooser is cancelled', async () => {
    await renderApp();
    await userEvent.click(screen.getByRole('button', { name: 'Add receipts…' }));
    expect(desk.scans, 'no paths, no scan').toHaveLength(0);
    expect(screen.queryByRole('region', { name: 'Receipts' })).toBeNull();
  });
});

describe('reviewing a receipt', () => {
  it('marks the fields the reader was unsure of until they are edited', async () => {
    const e = draft();
    await openReview(e.id);
    const merchant = screen.getByRole('textbox', { name: 'Merchant' });
    const total = screen.getByRole('textbox', { name: 'Total' });
    expect(merchant, 'an unsure field says so in words, not only colour').toHaveAccessibleDescription(expect.stringContaining('Check this'));
    expect(total, 'a field read with confidence is not marked').not.toHaveAccessibleDescription(expect.stringContaining('Check this'));
    expect(screen.getByText(/2 fields to check/)).toBeInTheDocument();

    await userEvent.clear(merchant);
    await userEvent.type(merchant, 'Book Ta.K (Taman Daya) Sdn Bhd');
    expect(merchant, 'editing a field is checking it').not.toHaveAccessibleDescription(expect.stringContaining('Check this'));
    expect(screen.getByText(/1 field to check/)).toBeInTheDocument();

    await userEvent.click(screen.getByRole('textbox', { name: 'Amount, line 1' }));
    await userEvent.type(screen.getByRole('textbox', { name: 'Amount, line 1' }), '0');
    expect(screen.queryByText(/to check/), 'every unsure field has been looked at').toBeNull();
  });

  it('highlights where on the receipt the focused field was read', async () => {
    const e = draft();
    const { container } = await (async () => {
      goTo({ name: 'expense', id: e.id });
      const r = await renderApp();
      await screen.findByRole('heading', { level: 1, name: 'Review receipt' });
      return r;
    })();
    const line = (i: number) => container.querySelector(`polygon[data-line="${i}"]`)!;
    expect(screen.getByRole('img', { name: 'Receipt from BOOK TA _K SDN BHD' })).toHaveAttribute(
      'src',
      `receipt://localhost/${'ab'.repeat(32)}`,
    );
    expect(line(3)).not.toHaveClass('lit');
    await userEvent.click(screen.getByRole('textbox', { name: 'Total' }));
    expect(line(3), 'the total was read from line 3').toHaveClass('lit');
    expect(line(0)).not.toHaveClass('lit');
    await userEvent.click(screen.getByRole('textbox', { name: 'Merchant' }));
    expect(line(0)).toHaveClass('lit');
    expect(line(3)).not.toHaveClass('lit');
  });

  it('shows the field error Rust gives next to the field, and keeps what was typed', async () => {
    const save = vi.spyOn(desk.commands, 'saveDraft');
    const e = draft();
    await openReview(e.id);
    const currency = screen.getByRole('textbox', { name: 'Currency' });
    await userEvent.clear(currency);
    await userEvent.type(currency, 'eu');
    expect(currency, 'currency codes are upper case as typed').toHaveValue('EU');
    await userEvent.click(screen.getByRole('button', { name: 'Save draft' }));

    expect(save).toHaveBeenCalledWith(e.id, expect.objectContaining({ currency: 'EU', merchant: 'BOOK TA _K SDN BHD', version: 1 }));
    const error = await screen.findByText('"EU" is not a three-letter currency code such as EUR.');
    expect(currency, 'the error is tied to its field').toHaveAccessibleDescription(expect.stringContaining('is not a three-letter currency code'));
    expect(currency).toHaveAttribute('aria-invalid', 'true');
    expect(currency).toHaveValue('EU');
    expect(error).toHaveAttribute('role', 'alert');
  });

  it('shows items errors by the line items', async () => {
    const e = draft();
    await openReview(e.id);
    await userEvent.click(screen.getByRole('button', { name: 'Add line' }));
    await userEvent.type(screen.getByRole('textbox', { name: 'Amount, line 2' }), '3.50');
    await userEvent.click(screen.getByRole('button', { name: 'Save draft' }));
    expect(await screen.findByText('Line 2: description must not be empty.')).toBeInTheDocument();
    expect(screen.getByRole('table', { name: 'Line items' })).toHaveAccessibleDescription('Line 2: description must not be empty.');
  });

  it('saves with the version it read and reloads when the draft changed meanwhile', async () => {
    const e = draft();
    await openReview(e.id);
    await userEvent.type(screen.getByRole('textbox', { name: 'Tax' }), '0.51');
    await userEvent.click(screen.getByRole('button', { name: 'Save draft' }));
    await screen.findByText('Draft saved');
    expect(desk.expenses[0].expense).toMatchObject({ tax: '0.51', version: 2 });

    desk.expenses[0].expense.version = 7;
    desk.expenses[0].expense.merchant = 'Changed elsewhere';
    await userEvent.type(screen.getByRole('textbox', { name: 'Merchant' }), ' X');
    await userEvent.click(screen.getByRole('button', { name: 'Save draft' }));
    await screen.findByText(/changed after you opened it/);
    await waitFor(() =>
      expect(screen.getByRole('textbox', { name: 'Merchant' }), 'the reloaded draft shows what is stored').toHaveValue('Changed elsewhere'),
    );
  });

  it('shows warnings without stopping the submission, then goes to the claim', async () => {
    const submit = vi.spyOn(desk.commands, 'submitExpense');
    const e = draft({ total: '10.00' });
    await openReview(e.id);
    const warnings = screen.getByRole('note', { name: 'Warnings' });
    expect(warnings).toHaveTextContent('The line items add up to 9.00, not 10.00 (the total).');

    await userEvent.click(screen.getByRole('button', { name: 'Submit…' }));
    const dialog = screen.getByRole('dialog', { name: 'Submit expense' });
    expect(within(dialog).getByRole('note', { name: 'Before you submit' }), 'the warning is repeated where it matters').toHaveTextContent('add up to 9.00');
    expect(within(dialog).getByRole('radio', { name: 'A new expense claim' })).toBeChecked();
    await userEvent.click(within(dialog).getByRole('button', { name: 'Submit expense' }));

    expect(submit).toHaveBeenCalledWith(e.id, expect.objectContaining({ total: '10.00', version: 1 }), { kind: 'new', title: null });
    const heading = await screen.findByRole('heading', { level: 1, name: /Expense claim: BOOK TA _K SDN BHD, 2018-12-25/ });
    expect(heading).toBeInTheDocument();
    const section = await screen.findByRole('region', { name: /Expenses/ });
    expect(within(section).getByRole('link', { name: 'BOOK TA _K SDN BHD' })).toBeInTheDocument();
    expect(section).toHaveTextContent('Submitted');
    await waitFor(() => expect(screen.getByRole('list', { name: 'Activity' })).toHaveTextContent(/filed an expense: BOOK TA _K SDN BHD \(MYR\s10\.00\)/));
  });

  it('asks for the missing fields Rust requires to submit, next to them', async () => {
    const e = draft({ spent_on: null });
    await openReview(e.id);
    await userEvent.click(screen.getByRole('button', { name: 'Submit…' }));
    await userEvent.click(within(screen.getByRole('dialog', { name: 'Submit expense' })).getByRole('button', { name: 'Submit expense' }));
    await waitFor(() => expect(screen.queryByRole('dialog')).toBeNull());
    const date = screen.getByLabelText('Date');
    expect(date).toHaveAccessibleDescription('The date must not be empty.');
    expect(date).toHaveAttribute('aria-invalid', 'true');
  });

  it('files on one of the user’s open claims', async () => {
    const submit = vi.spyOn(desk.commands, 'submitExpense');
    const claim = desk.tickets[5]; // category "expense"
    Object.assign(claim, { requester_id: desk.me.id, status: 'open', title: 'March travel' });
    const e = draft();
    await openReview(e.id);
    await userEvent.click(screen.getByRole('button', { name: 'Submit…' }));
    const dialog = screen.getByRole('dialog', { name: 'Submit expense' });
    await userEvent.click(within(dialog).getByRole('radio', { name: 'One of my open claims' }));
    expect(within(dialog).getByRole('combobox', { name: 'Open claim' })).toHaveDisplayValue('#6 March travel');
    await userEvent.click(within(dialog).getByRole('button', { name: 'Submit expense' }));
    expect(submit).toHaveBeenCalledWith(e.id, expect.anything(), { kind: 'existing', ticket_id: claim.id });
    await screen.findByRole('heading', { level: 1, name: /#6 March travel/ });
  });

  it('discards a draft only after confirming, and goes on to the next receipt of the drop', async () => {
    await renderApp();
    await drop(['/r']);
    const a = draft({ merchant: 'Cafe A' });
    const b = draft({ merchant: 'Cafe B' });
    const scan = desk.scans[0];
    scan.send({ kind: 'started', files: [{ name: 'a.jpg', path: '/r/a.jpg' }, { name: 'b.jpg', path: '/r/b.jpg' }] });
    scan.send({ kind: 'read', index: 0, expense: a });
    scan.send({ kind: 'read', index: 1, expense: b });
    await userEvent.click(await screen.findByRole('button', { name: 'Review a.jpg' }));
    await screen.findByRole('heading', { level: 1, name: 'Review receipt' });
    expect(screen.getByText('1 more from this drop')).toBeInTheDocument();

    await userEvent.click(screen.getByRole('button', { name: 'Discard draft' }));
    const confirm = screen.getByRole('dialog', { name: 'Discard draft' });
    expect(desk.expenses, 'nothing is thrown away before confirming').toHaveLength(2);
    await userEvent.click(within(confirm).getByRole('button', { name: 'Discard draft' }));
    await waitFor(() => expect(screen.getByRole('textbox', { name: 'Merchant' })).toHaveValue('Cafe B'));
    expect(desk.expenses.map((x) => x.expense.merchant)).toEqual(['Cafe B']);
    const tray = screen.getByRole('region', { name: 'Receipts' });
    expect(within(tray).queryByRole('listitem'), 'opening a receipt folds the list away').toBeNull();
    await userEvent.click(within(tray).getByRole('button', { name: 'Show details' }));
    expect(within(tray).getByRole('listitem', { name: 'a.jpg' })).toHaveTextContent('Discarded');
    expect(within(tray).getByRole('listitem', { name: 'b.jpg' })).toHaveTextContent('Review');
    expect(screen.queryByRole('button', { name: 'Next receipt' }), 'no receipt is left after this one').toBeNull();
  });

  it('shows a submitted expense as filed, with Approve and Reject for approvers', async () => {
    const ticket = desk.tickets[5];
    const e = draft({ status: 'submitted', ticket: { id: ticket.id, number: ticket.number, title: ticket.title, status: ticket.status }, ...filedBySomeoneElse() });
    goTo({ name: 'expense', id: e.id });
    await renderApp();
    await screen.findByRole('heading', { level: 1, name: 'BOOK TA _K SDN BHD' });
    expect(screen.queryByRole('textbox', { name: 'Merchant' }), 'a submitted expense is not edited').toBeNull();
    expect(screen.getByRole('link', { name: `#${ticket.number} ${ticket.title}` })).toBeInTheDocument();
    await userEvent.click(screen.getByRole('button', { name: /^Approve / }));
    await screen.findByRole('note', { name: 'Decision' });
    expect(screen.getByRole('note', { name: 'Decision' })).toHaveTextContent('Approved by Alex Morgan');
    expect(screen.queryByRole('button', { name: /^Approve / }), 'a decided expense is not decided again').toBeNull();
  });

  it('offers no decision on an expense the approver filed themselves', async () => {
    const decide = vi.spyOn(desk.commands, 'decideExpense');
    const ticket = desk.tickets[5];
    const e = draft({ status: 'submitted', ticket: { id: ticket.id, number: ticket.number, title: ticket.title, status: ticket.status } });
    goTo({ name: 'expense', id: e.id });
    await renderApp();
    await screen.findByRole('heading', { level: 1, name: 'BOOK TA _K SDN BHD' });
    expect(screen.getByText(/You filed this expense, so another approver approves or rejects it/)).toBeInTheDocument();
    expect(screen.queryByRole('button', { name: /^Approve / }), 'segregation of duties: not one’s own expense').toBeNull();
    expect(screen.queryByRole('button', { name: /^Reject / })).toBeNull();
    expect(decide).not.toHaveBeenCalled();
    const refused = await desk.commands.decideExpense(e.id, true, null, e.version);
    expect(refused, 'the desk refuses it too, with the code the server uses').toMatchObject({ status: 'error', error: { code: 'own_expense' } });
  });

  it('shows a first approval of two as waiting for a second approver', async () => {
    const ticket = desk.tickets[5];
    const e = draft({
      status: 'submitted',
      total: '900.00',
      approvals_required: 2,
      ticket: { id: ticket.id, number: ticket.number, title: ticket.title, status: ticket.status },
      ...filedBySomeoneElse(),
    });
    goTo({ name: 'expense', id: e.id });
    await renderApp();
    await screen.findByRole('heading', { level: 1, name: 'BOOK TA _K SDN BHD' });
    expect(screen.getByText(/0 of 2 approvals/)).toBeInTheDocument();
    await userEvent.click(screen.getByRole('button', { name: /^Approve / }));
    await screen.findByText(/1 of 2 approvals: waiting for a second approver/);
    expect(screen.queryByRole('note', { name: 'Decision' }), 'one approval of two decides nothing').toBeNull();
    expect(screen.queryByRole('button', { name: /^Approve / }), 'the same approver does not approve twice').toBeNull();

    goTo({ name: 'ticket', id: ticket.id });
    const section = await screen.findByRole('region', { name: /Expenses/ });
    expect(within(section).getByRole('listitem', { name: /^BOOK TA/ }), 'the claim shows it too').toHaveTextContent('1 of 2 approvals');
  });
});

describe('expenses on a ticket', () => {
  it('are listed, and a rejection needs a reason and shows in the activity', async () => {
    const decide = vi.spyOn(desk.commands, 'decideExpense');
    const ticket = desk.tickets[5];
    const ref = { id: ticket.id, number: ticket.number, title: ticket.title, status: ticket.status };
    draft({ status: 'submitted', ticket: ref, merchant: 'Grab', total: '23.40', ...filedBySomeoneElse() });
    draft({ status: 'approved', ticket: ref, merchant: 'Hotel Lux', total: '180.00', ...filedBySomeoneElse() });
    goTo({ name: 'ticket', id: ticket.id });
    await renderApp();

    const section = await screen.findByRole('region', { name: /Expenses/ });
    expect(within(section).getByRole('listitem', { name: /^Grab/ })).toHaveTextContent('Submitted');
    expect(within(section).getByRole('listitem', { name: /^Hotel Lux/ })).toHaveTextContent('Approved');
    const reject = await within(section).findByRole('button', { name: /^Reject Grab/ });
    expect(within(section).queryByRole('button', { name: /Reject Hotel Lux/ }), 'only submitted expenses are decided').toBeNull();

    await userEvent.click(reject);
    const dialog = screen.getByRole('dialog', { name: 'Reject expense' });
    await userEvent.click(within(dialog).getByRole('button', { name: 'Reject expense' }));
    expect(within(dialog).getByRole('alert')).toHaveTextContent(/say why/i);
    expect(decide, 'nothing is sent without a reason').not.toHaveBeenCalled();
    await userEvent.type(within(dialog).getByRole('textbox', { name: 'Reason' }), 'Personal trip');
    await userEvent.click(within(dialog).getByRole('button', { name: 'Reject expense' }));

    expect(decide).toHaveBeenCalledWith(expect.any(String), false, 'Personal trip', 1);
    await waitFor(() => expect(within(section).getByRole('listitem', { name: /^Grab/ })).toHaveTextContent('Rejected'));
    expect(within(section).getByRole('listitem', { name: /^Grab/ })).toHaveTextContent('Reason: Personal trip');
    await waitFor(() =>
      expect(screen.getByRole('list', { name: 'Activity' })).toHaveTextContent(/rejected the expense Grab \(MYR\s23\.40\)\s*Reason: Personal trip/),
    );
  });

  it('are not shown on a ticket without any', async () => {
    goTo({ name: 'ticket', id: desk.tickets[1].id });
    await renderApp();
    await screen.findByRole('heading', { level: 1, name: /#2\b/ });
    expect(screen.queryByRole('region', { name: /^Expenses/ })).toBeNull();
  });
});

describe('the expenses view', () => {
  function seed() {
    draft({ merchant: 'Cafe Nero', spent_on: '2025-03-02', currency: 'EUR', total: '12.50', status: 'approved', category: 'meals', items: [] });
    draft({ merchant: 'Taxi Milano', spent_on: '2025-03-03', currency: 'EUR', total: '7.50', status: 'submitted', category: 'taxi', items: [] });
    draft({ merchant: 'Uber', spent_on: '2025-02-10', currency: 'USD', total: '3.00', status: 'submitted', category: 'taxi', items: [] });
    draft({ merchant: 'Draft Diner', spent_on: '2025-03-04', currency: 'EUR', total: '99.00', items: [] });
    draft({ merchant: 'Nope Bar', spent_on: '2025-03-05', currency: 'EUR', total: '50.00', status: 'rejected', items: [] });
  }

  it('lists expenses with totals per currency that leave out drafts and rejections', async () => {
    seed();
    goTo({ name: 'expenses' });
    await renderApp();
    const table = await screen.findByRole('table', { name: 'Expenses' });
    expect(within(table).getAllByRole('row')).toHaveLength(6);
    const totals = screen.getByRole('region', { name: 'Totals' });
    expect(totals).toHaveTextContent(/EUR\s20\.00\s*2 expenses/);
    expect(totals).toHaveTextContent(/USD\s3\.00\s*1 expense/);
    expect(totals).not.toHaveTextContent('99');

    await userEvent.click(within(table).getByRole('link', { name: 'Draft Diner' }));
    await screen.findByRole('heading', { level: 1, name: 'Review receipt' });
  });

  it('asks Rust for what the filters say', async () => {
    seed();
    const list = vi.spyOn(desk.commands, 'listExpenses');
    goTo({ name: 'expenses' });
    await renderApp();
    await screen.findByRole('table', { name: 'Expenses' });
    expect(list).toHaveBeenLastCalledWith({ from: null, to: null, merchant: null, category: null, status: null, ticket_id: null });

    await fireEvent.input(screen.getByLabelText('From'), { target: { value: '2025-03-01' } });
    await fireEvent.input(screen.getByLabelText('To'), { target: { value: '2025-03-31' } });
    await userEvent.selectOptions(screen.getByRole('combobox', { name: 'Category' }), 'Taxi');
    await userEvent.selectOptions(screen.getByRole('combobox', { name: 'Status' }), 'Submitted');
    await userEvent.type(screen.getByRole('searchbox', { name: 'Merchant' }), 'milano');
    await waitFor(() =>
      expect(list).toHaveBeenLastCalledWith({ from: '2025-03-01', to: '2025-03-31', merchant: 'milano', category: 'taxi', status: 'submitted', ticket_id: null }),
    );
    await waitFor(() => expect(within(screen.getByRole('table', { name: 'Expenses' })).getAllByRole('row')).toHaveLength(2));
    expect(screen.getByRole('link', { name: 'Taxi Milano' })).toBeInTheDocument();

    await userEvent.click(screen.getByRole('button', { name: 'Clear filters' }));
    await waitFor(() => expect(within(screen.getByRole('table', { name: 'Expenses' })).getAllByRole('row'), 'all are listed again').toHaveLength(6));
    expect(screen.getByRole('searchbox', { name: 'Merchant' })).toHaveValue('');
  });

  it('shows Rust’s refusal of a range that ends before it starts by the dates', async () => {
    seed();
    vi.spyOn(desk.commands, 'listExpenses').mockImplementation((q) =>
      Promise.resolve(
        q.from && q.to
          ? { status: 'error', error: { code: 'invalid_field', message: 'the range ends (2025-01-01) before it starts (2025-03-01)', field: 'to' } }
          : { status: 'ok', data: { expenses: [], totals: [], categories: ['other'] } },
      ),
    );
    goTo({ name: 'expenses' });
    await renderApp();
    await fireEvent.input(await screen.findByLabelText('From'), { target: { value: '2025-03-01' } });
    await fireEvent.input(screen.getByLabelText('To'), { target: { value: '2025-01-01' } });
    await waitFor(() => expect(screen.getByLabelText('To')).toHaveAccessibleDescription('The range ends (2025-01-01) before it starts (2025-03-01).'));
  });

  it('exports what is listed to CSV and says where', async () => {
    seed();
    const exported = vi.spyOn(desk.commands, 'exportExpensesCsv');
    goTo({ name: 'expenses' });
    await renderApp();
    await screen.findByRole('table', { name: 'Expenses' });
    await userEvent.selectOptions(screen.getByRole('combobox', { name: 'Status' }), 'Approved');
    await userEvent.click(screen.getByRole('button', { name: 'Export CSV' }));
    expect(exported).toHaveBeenCalledWith(expect.objectContaining({ status: 'approved' }));
    expect(await screen.findByText('Saved to /home/alex/expenses.csv')).toBeInTheDocument();

    exported.mockResolvedValueOnce({ status: 'ok', data: null });
    await userEvent.click(screen.getByRole('button', { name: 'Export CSV' }));
    expect(screen.getAllByText(/Saved to/), 'cancelling the save says nothing').toHaveLength(1);
  });

  it('says how to start when there are none', async () => {
    goTo({ name: 'expenses' });
    await renderApp();
    expect(await screen.findByText(/Drop receipt photos on the window to start/)).toBeInTheDocument();
    const pick = vi.spyOn(desk.commands, 'pickReceipts');
    await userEvent.click(screen.getByRole('button', { name: 'Add folder…' }));
    expect(pick, 'the chooser asks for folders').toHaveBeenCalledWith(true);
  });
});

// Expenses, with what was read from their receipts: scans wait for the test to answer them, and
// a submitted expense is a claim on a ticket whose activity records it.

import type { ClaimRef, ClaimTarget, DeskError, Expense, ExpenseInput, ExpenseQuery, ExpenseReview, Reading, ScanEvent, Ticket } from '../../lib/ipc';
import { RULES } from '../rules.generated';
import { fail, ok, uuid, type Result } from './base';
import type { Seed } from './seed';
import type { TicketDesk } from './tickets';

const EXPENSE_CATEGORIES = ['travel', 'taxi', 'meals', 'lodging', 'fuel', 'office', 'software', 'other'];

const cents = (amount: string) => Math.round(Number(amount.replace(/,/g, '')) * 100);
const amountText = (minor: number) => (minor / 100).toFixed(2);

function warnings(e: Pick<Expense, 'items' | 'total' | 'subtotal' | 'tax'>): string[] {
  const out: string[] = [];
  const expected = [e.subtotal, e.total].filter((v): v is string => v !== null).map(cents);
  if (e.items.length > 0 && expected.length > 0) {
    const sum = e.items.reduce((s, i) => s + cents(i.amount), 0);
    if (!expected.includes(sum)) {
      out.push(
        `The line items add up to ${amountText(sum)}, not ${amountText(expected[0])} ${e.subtotal !== null ? '(the subtotal)' : '(the total)'}.`,
      );
    }
  }
  if (e.tax !== null && e.total !== null && cents(e.tax) > cents(e.total)) out.push('The tax is larger than the total.');
  return out;
}

/** Checks a person's input as Rust does (the parts the tests rely on); the error, or the fields. */
function parseExpense(input: ExpenseInput): DeskError | Partial<Expense> {
  const invalid = (field: string, message: string): DeskError => ({ code: 'invalid_field', message, field });
  const currency = input.currency.trim().toUpperCase();
  if (!/^[A-Z]{3}$/.test(currency)) return invalid('currency', `"${input.currency.trim()}" is not a three-letter currency code such as EUR`);
  const AMOUNT = /^(\d{1,3}(,\d{3})+|\d+)(\.\d{0,2})?$/;
  const amount = (field: string, v: string | null | undefined): DeskError | string | null => {
    const text = v?.trim();
    if (!text) return null;
    return AMOUNT.test(text) ? amountText(cents(text)) : invalid(field, `"${text}" is not an amount; write it like 1234.50`);
  };
  const total = amount('total', input.total);
  const subtotal = amount('subtotal', input.subtotal);
  const tax = amount('tax', input.tax);
  for (const a of [total, subtotal, tax]) if (a !== null && typeof a === 'object') return a;
  const spent = input.spent_on?.trim() || null;
  if (spent && !/^\d{4}-\d{2}-\d{2}$/.test(spent)) return invalid('spent_on', `"${spent}" is not a date; use YYYY-MM-DD`);
  if (!EXPENSE_CATEGORIES.includes(input.category)) return invalid('category', `"${input.category}" is not one of ${EXPENSE_CATEGORIES.join(', ')}`);
  const items = [];
  for (const [i, item] of input.items.entries()) {
    if (!item.description.trim()) return invalid('items', `line ${i + 1}: description must not be empty`);
    const a = amount('amount', item.amount);
    if (a === null) return invalid('items', `line ${i + 1}: amount must not be empty`);
    if (typeof a === 'object') return invalid('items', `line ${i + 1}: ${a.message}`);
    items.push({ description: item.description.trim(), quantity: item.quantity?.trim() || null, amount: a });
  }
  return {
    merchant: input.merchant?.trim() || null,
    spent_on: spent,
    currency,
    total: total as string | null,
    subtotal: subtotal as string | null,
    tax: tax as string | null,
    category: input.category,
    items,
    note: input.note?.trim() || null,
  };
}

function claimRef(t: Ticket): ClaimRef {
  return { id: t.id, number: t.number, title: t.title, status: t.status };
}

export function expenseDesk({ me, tickets }: Seed, { find, record }: TicketDesk) {
  const expenses: { expense: Expense; reading: Reading | null }[] = [];
  /** Scans asked for, for the test to answer: `send` delivers an event, `done` ends the command. */
  const scans: { paths: string[]; send: (event: ScanEvent) => void; done: () => void }[] = [];
  /** What the file chooser returns next. */
  let picked: string[] = [];

  const findExpense = (id: string) => expenses.find((x) => x.expense.id === id);

  function review(x: { expense: Expense; reading: Reading | null }): ExpenseReview {
    return {
      expense: x.expense,
      reading: x.reading,
      editable: x.expense.status === 'draft' && x.expense.requester_id === me.id,
      decidable:
        x.expense.status === 'submitted' &&
        RULES.access[me.role].decide_expense !== 'denied' &&
        x.expense.requester_id !== me.id &&
        !x.expense.approved_by.includes(me.id),
    };
  }

  /** Adds an expense as a scan would (a draft of the current user, unless told otherwise). */
  function addExpense(fields: Partial<Expense> = {}, reading: Reading | null = null): Expense {
    const now = new Date().toISOString();
    const expense: Expense = {
      id: uuid(),
      status: 'draft',
      requester_id: me.id,
      requester_name: me.name,
      ticket: null,
      merchant: null,
      spent_on: null,
      currency: 'EUR',
      total: null,
      subtotal: null,
      tax: null,
      category: 'other',
      items: [],
      note: null,
      image: { sha256: 'ab'.repeat(32), media_type: 'image/jpeg', width: 400, height: 800 },
      source_name: 'receipt.jpg',
      warnings: [],
      decision: null,
      approved_by: [],
      approvals_required: 1,
      created_at: now,
      updated_at: now,
      version: 1,
      ...fields,
    };
    expense.warnings = warnings(expense);
    expenses.push({ expense, reading });
    return expense;
  }

  /** Makes the next file chooser return `paths`. */
  function pick(paths: string[]) {
    picked = paths;
  }

  const commands = {
    scanReceipts: (paths: string[], channel: { onmessage: (event: ScanEvent) => void }) =>
      new Promise<Result<null>>((resolve) => {
        scans.push({ paths, send: (event) => channel.onmessage(structuredClone(event)), done: () => resolve({ status: 'ok', data: null }) });
      }),
    pickReceipts: (folders: boolean): Promise<string[]> => {
      void folders;
      const paths = picked;
      picked = [];
      return Promise.resolve(paths);
    },
    getExpense: (id: string) => {
      const x = findExpense(id);
      return x ? ok(review(x)) : fail<ExpenseReview>('not_found', 'expense not found');
    },
    saveDraft: (id: string, input: ExpenseInput) => {
      const x = findExpense(id);
      if (!x) return fail<Expense>('not_found', 'expense not found');
      if (x.expense.version !== input.version) return fail<Expense>('stale_version', 'the expense changed since you opened it; reload it');
      const parsed = parseExpense(input);
      if ('code' in parsed) return fail<Expense>(parsed.code, parsed.message, parsed.field);
      Object.assign(x.expense, parsed, { version: x.expense.version + 1, updated_at: new Date().toISOString() });
      x.expense.warnings = warnings(x.expense);
      return ok(x.expense);
    },
    submitExpense: (id: string, input: ExpenseInput, target: ClaimTarget) => {
      const x = findExpense(id);
      if (!x) return fail<Expense>('not_found', 'expense not found');
      if (x.expense.version !== input.version) return fail<Expense>('stale_version', 'the expense changed since you opened it; reload it');
      const parsed = parseExpense(input);
      if ('code' in parsed) return fail<Expense>(parsed.code, parsed.message, parsed.field);
      if (!parsed.merchant) return fail<Expense>('invalid_field', 'merchant must not be empty', 'merchant');
      if (!parsed.spent_on) return fail<Expense>('invalid_field', 'the date must not be empty', 'spent_on');
      if (!parsed.total) return fail<Expense>('invalid_field', 'the total must not be empty', 'total');
      let ticket: Ticket | undefined;
      if (target.kind === 'existing') {
        ticket = find(target.ticket_id);
        if (!ticket) return fail<Expense>('not_found', 'ticket not found');
      } else {
        const title = target.title?.trim() || `Expense claim: ${parsed.merchant}, ${parsed.spent_on}`;
        if (title.length > 200) return fail<Expense>('invalid_field', 'title is too long', 'title');
        const now = new Date().toISOString();
        ticket = {
          ...tickets[0],
          id: uuid(),
          number: tickets.length + 1,
          title,
          description: '',
          status: 'open',
          priority: 'medium',
          category: 'expense',
          requester_id: me.id,
          assignee_id: null,
          customer_id: null,
          hold_reason: null,
          created_at: now,
          updated_at: now,
          version: 1,
        };
        tickets.push(ticket);
      }
      Object.assign(x.expense, parsed, { status: 'submitted', ticket: claimRef(ticket), version: x.expense.version + 1 });
      x.expense.warnings = warnings(x.expense);
      record(ticket, 'expense.submitted', null, null, {
        expense_id: id,
        merchant: parsed.merchant,
        total: parsed.total,
        currency: parsed.currency,
      });
      return ok(x.expense);
    },
    decideExpense: (id: string, approve: boolean, note: string | null, version: number) => {
      const x = findExpense(id);
      if (!x) return fail<Expense>('not_found', 'expense not found');
      if (x.expense.version !== version) return fail<Expense>('stale_version', 'the expense changed since you opened it; reload it');
      if (x.expense.requester_id === me.id) {
        return fail<Expense>('own_expense', 'you submitted this expense, so another approver approves or rejects it');
      }
      if (approve && x.expense.approved_by.includes(me.id)) {
        return fail<Expense>('already_approved', "you approved this expense already: it needs another approver's approval");
      }
      if (!approve && !note?.trim()) {
        return fail<Expense>('invalid_field', 'say why the expense is rejected, so the requester can correct it', 'note');
      }
      const at = new Date().toISOString();
      const approvedBy = approve ? [...x.expense.approved_by, me.id] : x.expense.approved_by;
      if (approve && approvedBy.length < x.expense.approvals_required) {
        Object.assign(x.expense, { approved_by: approvedBy, version: x.expense.version + 1 });
      } else {
        Object.assign(x.expense, {
          status: approve ? 'approved' : 'rejected',
          decision: { approved: approve, by_name: me.name, at, note: note?.trim() || null },
          approved_by: approvedBy,
          version: x.expense.version + 1,
        });
      }
      const t = x.expense.ticket && find(x.expense.ticket.id);
      if (t) {
        record(t, approve ? 'expense.approved' : 'expense.rejected', null, null, {
          expense_id: id,
          merchant: x.expense.merchant,
          total: x.expense.total,
          currency: x.expense.currency,
          note: note?.trim() || null,
        });
      }
      return ok(x.expense);
    },
    discardDraft: (id: string) => {
      const i = expenses.findIndex((x) => x.expense.id === id);
      if (i >= 0) expenses.splice(i, 1);
      return ok(null);
    },
    listExpenses: (q: ExpenseQuery) => {
      const merchant = q.merchant?.trim().toLowerCase();
      const list = expenses
        .map((x) => x.expense)
        .filter(
          (e) =>
            (!q.from || (e.spent_on !== null && e.spent_on >= q.from)) &&
            (!q.to || (e.spent_on !== null && e.spent_on <= q.to)) &&
            (!merchant || (e.merchant ?? '').toLowerCase().includes(merchant)) &&
            (!q.category || e.category === q.category) &&
            (!q.status || e.status === q.status) &&
            (!q.ticket_id || e.ticket?.id === q.ticket_id),
        )
        .sort((a, b) => (b.spent_on ?? '').localeCompare(a.spent_on ?? ''));
      const sums = new Map<string, { minor: number; count: number }>();
      for (const e of list) {
        if (e.status === 'draft' || e.status === 'rejected' || e.total === null) continue;
        const sum = sums.get(e.currency) ?? { minor: 0, count: 0 };
        sums.set(e.currency, { minor: sum.minor + cents(e.total), count: sum.count + 1 });
      }
      const totals = [...sums].sort(([a], [b]) => a.localeCompare(b)).map(([currency, s]) => ({ currency, total: amountText(s.minor), count: s.count }));
      return ok({ expenses: list, totals, categories: EXPENSE_CATEGORIES });
    },
    exportExpensesCsv: (q: ExpenseQuery) => {
      void q;
      return ok<string | null>('/home/alex/expenses.csv');
    },
    openClaims: () =>
      ok(
        tickets
          .filter((t) => t.category === 'expense' && t.requester_id === me.id && !['resolved', 'closed'].includes(t.status))
          .reverse()
          .map(claimRef),
      ),
  };

  return { expenses, scans, addExpense, pick, commands };
}

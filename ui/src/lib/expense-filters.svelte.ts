// The Expenses view's filters: UI state, kept while the user moves between screens. The
// expenses themselves come through the query layer (`queries.expenses`).

import type { ExpenseQuery, ExpenseStatus } from './ipc';

export interface ExpenseFilters {
  /** YYYY-MM-DD or ''. */
  from: string;
  to: string;
  /** The merchant search applied (typing applies it after a short pause). */
  merchant: string;
  category: string;
  status: ExpenseStatus | '';
}

export const expenseFilters = $state<ExpenseFilters>({ from: '', to: '', merchant: '', category: '', status: '' });

export function expenseQuery(f: ExpenseFilters = expenseFilters): ExpenseQuery {
  return {
    from: f.from || null,
    to: f.to || null,
    merchant: f.merchant.trim() || null,
    category: f.category || null,
    status: f.status || null,
    ticket_id: null,
  };
}

export function hasExpenseFilters(f: ExpenseFilters = expenseFilters): boolean {
  return Boolean(f.from || f.to || f.merchant.trim() || f.category || f.status);
}

export function clearExpenseFilters() {
  Object.assign(expenseFilters, { from: '', to: '', merchant: '', category: '', status: '' });
}

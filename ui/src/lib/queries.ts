// The keys and fetchers of everything the UI reads from Rust. Mutations invalidate by these keys.

import type { CustomerId, ExpenseId, ExpenseQuery, TicketId, TicketQuery, TicketRow } from './ipc';
import { api } from './ipc';
import type { PagedSpec, QuerySpec } from './query.svelte';

export const queries = {
  workspace: () => ({ key: ['workspace'], fetch: api.workspaceInfo }),
  /** Local, signed out or signed in: which screen the app shows. */
  account: () => ({ key: ['account'], fetch: api.account }),
  members: () => ({ key: ['members'], fetch: api.listMembers }),
  invitations: () => ({ key: ['invitations'], fetch: api.listInvitations }),
  people: () => ({ key: ['people'], fetch: api.listPeople }),
  preferences: () => ({ key: ['preferences'], fetch: api.getPreferences }),
  appInfo: () => ({ key: ['app-info'], fetch: api.appInfo }),
  customers: (search = '') => ({
    key: ['customers', search.trim()],
    fetch: () => api.listCustomers(search.trim() || null),
  }),
  customer: (id: CustomerId) => ({ key: ['customer', id], fetch: () => api.getCustomer(id) }),
  /** Opening a ticket is viewing it: for an agent, an open ticket starts being worked on. */
  ticket: (id: TicketId) => ({ key: ['ticket', id, 'detail'], fetch: () => api.viewTicket(id) }),
  comments: (id: TicketId) => ({ key: ['ticket', id, 'comments'], fetch: () => api.listComments(id) }),
  activity: (id: TicketId) => ({ key: ['ticket', id, 'activity'], fetch: () => api.ticketActivity(id) }),
  expenses: (query: ExpenseQuery) => ({ key: ['expenses', query], fetch: () => api.listExpenses(query) }),
  expense: (id: ExpenseId) => ({ key: ['expense', id], fetch: () => api.getExpense(id) }),
  openClaims: () => ({ key: ['open-claims'], fetch: api.openClaims }),
  /** In the order they are tried. */
  slaPolicies: () => ({ key: ['sla-policies'], fetch: api.listSlaPolicies }),
  calendars: () => ({ key: ['calendars'], fetch: api.listCalendars }),
  /** Kept current by the `sync-status` event (lib/sync.svelte.ts). */
  syncStatus: () => ({ key: ['sync-status'], fetch: api.syncStatus }),
  /** The changes the server refused: on one ticket, or all (`null`). */
  rejections: (ticket: TicketId | null) => ({ key: ['sync-rejections', ticket], fetch: () => api.syncRejections(ticket) }),
  /** A ticket as it is, without viewing it (a refused change names it). */
  ticketSummary: (id: TicketId) => ({ key: ['ticket', id, 'summary'], fetch: () => api.getTicket(id) }),
} satisfies Record<string, (...args: never[]) => QuerySpec<unknown>>;

/** The queue: `query` without its cursor and page size, read in pages. */
export function ticketPages(query: TicketQuery): PagedSpec<TicketRow> {
  return {
    key: ['tickets', query],
    fetchPage: (cursor, limit) => api.listTickets({ ...query, cursor, limit }),
  };
}

/** What changes when a ticket does: its own entries, the queue, the view counts, customers. */
export function ticketChanged(id?: TicketId) {
  return [['tickets'], ['workspace'], ['customer'], ...(id ? [['ticket', id]] : [])] as const;
}

/** No filters: every expense the user may see. */
export const ALL_EXPENSES: ExpenseQuery = { from: null, to: null, merchant: null, category: null, status: null, ticket_id: null };

/** The expenses filed on one ticket. */
export const ticketExpenses = (id: TicketId) => queries.expenses({ ...ALL_EXPENSES, ticket_id: id });

/** What changes when an expense does: it, the lists, the claims, and the ticket it is filed on. */
export function expenseChanged(id: ExpenseId, ticket?: TicketId | null) {
  return [['expense', id], ['expenses'], ['open-claims'], ...(ticket ? ticketChanged(ticket) : [])] as const;
}

/** What changes when an SLA policy or calendar does: the settings, and every ticket's SLA. */
export function slaSettingsChanged() {
  return [['sla-policies'], ['calendars'], ['tickets'], ['ticket'], ['customer']] as const;
}

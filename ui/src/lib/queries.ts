// The keys and fetchers of everything the UI reads from Rust. Mutations invalidate by these keys.

import type { CustomerId, TicketId, TicketQuery, TicketRow } from './ipc';
import { api } from './ipc';
import type { PagedSpec, QuerySpec } from './query.svelte';

export const queries = {
  workspace: () => ({ key: ['workspace'], fetch: api.workspaceInfo }),
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

// The queue's filters, search, sort and selection: UI state, kept while the user moves between
// screens. The tickets themselves come through the query layer (`ticketPages`).

import type { AssigneeFilter, Priority, Status, TicketQuery, TicketSort, TicketView } from './ipc';
import { navigate } from './router.svelte';

export interface QueueState {
  view: TicketView;
  status: Status | '';
  priority: Priority | '';
  /** '' (anyone), 'me', 'nobody' or a user id. */
  assignee: string;
  category: string;
  customer: string;
  /** The search applied (the search box applies what is typed after a short pause). */
  search: string;
  sort: TicketSort;
  /** Index of the selected row. */
  selected: number;
}

export const queue = $state<QueueState>({
  view: 'all',
  status: '',
  priority: '',
  assignee: '',
  category: '',
  customer: '',
  search: '',
  sort: 'newest',
  selected: 0,
});

function assigneeFilter(value: string): AssigneeFilter | null {
  if (value === '') return null;
  if (value === 'me') return { kind: 'me' };
  if (value === 'nobody') return { kind: 'nobody' };
  return { kind: 'user', id: value };
}

/** The query for the queue as it is set up now (without cursor and page size). */
export function queueQuery(state: QueueState = queue, view: TicketView = state.view): TicketQuery {
  return {
    view,
    status: state.status || null,
    priority: state.priority || null,
    assignee: assigneeFilter(state.assignee),
    category: state.category || null,
    customer: state.customer || null,
    search: state.search.trim() || null,
    sort: state.sort,
    cursor: null,
    limit: null,
  };
}

export function hasFilters(state: QueueState = queue): boolean {
  return Boolean(state.status || state.priority || state.assignee || state.category || state.customer || state.search.trim());
}

export function clearFilters() {
  Object.assign(queue, { status: '', priority: '', assignee: '', category: '', customer: '', search: '', selected: 0 });
}

/** Shows the queue in its current view. */
export function openQueue() {
  navigate({ name: 'queue', view: queue.view });
}

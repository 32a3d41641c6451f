// What the UI calls things. Which moves exist is decided in Rust (`allowed_moves`); this only names them.

import type { ExpenseStatus, Priority, Role, ScanStage, Status, TicketSort, TicketView } from './ipc';

export const STATUS_LABEL: Record<Status, string> = {
  open: 'Open',
  in_progress: 'In progress',
  on_hold: 'On hold',
  resolved: 'Resolved',
  closed: 'Closed',
};

export const PRIORITY_LABEL: Record<Priority, string> = {
  low: 'Low',
  medium: 'Medium',
  high: 'High',
  urgent: 'Urgent',
};

export const STATUSES = Object.keys(STATUS_LABEL) as Status[];
export const PRIORITIES = Object.keys(PRIORITY_LABEL) as Priority[];

export const VIEW_LABEL: Record<TicketView, string> = {
  all: 'All tickets',
  my_open: 'My open',
  unassigned: 'Unassigned',
  on_hold: 'On hold',
  recently_resolved: 'Recently resolved',
};

export const VIEWS = Object.keys(VIEW_LABEL) as TicketView[];

export const SORT_LABEL: Record<TicketSort, string> = {
  newest: 'Newest first',
  oldest: 'Oldest first',
  recently_updated: 'Recently updated',
  priority_high_first: 'Highest priority first',
};

export const ROLE_LABEL: Record<Role, string> = {
  requester: 'Requester',
  observer: 'Observer',
  agent: 'Agent',
  admin: 'Admin',
};

/** The button that moves a ticket from `from` to `to`. */
export function moveLabel(from: Status, to: Status): string {
  switch (to) {
    case 'in_progress':
      return from === 'on_hold' ? 'Resume' : from === 'open' ? 'Start work' : 'Reopen';
    case 'on_hold':
      return 'Put on hold';
    case 'resolved':
      return 'Resolve';
    case 'closed':
      return 'Close ticket';
    case 'open':
      return 'Reopen';
  }
}

/** The key that makes a move on the ticket screen. */
export const MOVE_KEY: Record<Status, string | null> = {
  in_progress: 'p',
  on_hold: 'h',
  resolved: 'r',
  closed: 'c',
  open: null,
};

export function categoryLabel(category: string): string {
  return category.charAt(0).toUpperCase() + category.slice(1).replace(/[-_]/g, ' ');
}

export const EXPENSE_STATUS_LABEL: Record<ExpenseStatus, string> = {
  draft: 'Draft',
  submitted: 'Submitted',
  approved: 'Approved',
  rejected: 'Rejected',
};

export const EXPENSE_STATUSES = Object.keys(EXPENSE_STATUS_LABEL) as ExpenseStatus[];

/** A receipt's step while it is read, in words. */
export const SCAN_STAGE_LABEL: Record<ScanStage, string> = {
  queued: 'Waiting',
  loading_models: 'Starting the receipt reader',
  opening_image: 'Opening the image',
  reading_text: 'Reading the text',
  finding_fields: 'Finding the total and date',
  saving: 'Saving the draft',
};

// Generated from Rust (tallydesk_shared::rules): the permission matrix and the ticket workflow,
// for the fake desk the component tests run against. Do not edit: regenerate it with
// `TALLYDESK_UPDATE_BINDINGS=1 cargo test -p tallydesk-shared --test shared ui_rules`.

import type { Action, Role, Status } from '../bindings';

/** How far a role may take an action: `own_tickets` only on tickets the member raised. */
export type Access = 'denied' | 'own_tickets' | 'allowed';

export interface Rules {
  /** `access[role][action]`. */
  access: Record<Role, Record<Action, Access>>;
  /** The statuses a ticket may move to from each, for whoever may work it. */
  next: Record<Status, Status[]>;
  /** The moves a role may make, by status: on tickets the mover raised, and on others'. */
  moves: Record<Role, { own: Record<Status, Status[]>; others: Record<Status, Status[]> }>;
  /** What opening a ticket does to its status, by role (`null`: nothing). */
  on_view: Record<Role, Record<Status, Status | null>>;
}

export const RULES: Rules = {
  "access": {
    "requester": {
      "view_ticket": "own_tickets",
      "create_ticket": "allowed",
      "create_ticket_for_others": "denied",
      "edit_ticket": "denied",
      "delete_ticket": "denied",
      "transition_ticket": "own_tickets",
      "comment_public": "own_tickets",
      "comment_internal": "denied",
      "view_internal_notes": "denied",
      "view_activity": "own_tickets",
      "view_customers": "denied",
      "edit_customers": "denied",
      "delete_customer": "denied",
      "view_members": "denied",
      "manage_members": "denied",
      "manage_invitations": "denied",
      "manage_tenant_settings": "denied",
      "submit_expense": "own_tickets",
      "decide_expense": "denied"
    },
    "observer": {
      "view_ticket": "allowed",
      "create_ticket": "denied",
      "create_ticket_for_others": "denied",
      "edit_ticket": "denied",
      "delete_ticket": "denied",
      "transition_ticket": "denied",
      "comment_public": "denied",
      "comment_internal": "denied",
      "view_internal_notes": "allowed",
      "view_activity": "allowed",
      "view_customers": "allowed",
      "edit_customers": "denied",
      "delete_customer": "denied",
      "view_members": "allowed",
      "manage_members": "denied",
      "manage_invitations": "denied",
      "manage_tenant_settings": "denied",
      "submit_expense": "denied",
      "decide_expense": "denied"
    },
    "agent": {
      "view_ticket": "allowed",
      "create_ticket": "allowed",
      "create_ticket_for_others": "allowed",
      "edit_ticket": "allowed",
      "delete_ticket": "denied",
      "transition_ticket": "allowed",
      "comment_public": "allowed",
      "comment_internal": "allowed",
      "view_internal_notes": "allowed",
      "view_activity": "allowed",
      "view_customers": "allowed",
      "edit_customers": "allowed",
      "delete_customer": "denied",
      "view_members": "allowed",
      "manage_members": "denied",
      "manage_invitations": "denied",
      "manage_tenant_settings": "denied",
      "submit_expense": "own_tickets",
      "decide_expense": "allowed"
    },
    "admin": {
      "view_ticket": "allowed",
      "create_ticket": "allowed",
      "create_ticket_for_others": "allowed",
      "edit_ticket": "allowed",
      "delete_ticket": "allowed",
      "transition_ticket": "allowed",
      "comment_public": "allowed",
      "comment_internal": "allowed",
      "view_internal_notes": "allowed",
      "view_activity": "allowed",
      "view_customers": "allowed",
      "edit_customers": "allowed",
      "delete_customer": "allowed",
      "view_members": "allowed",
      "manage_members": "allowed",
      "manage_invitations": "allowed",
      "manage_tenant_settings": "allowed",
      "submit_expense": "allowed",
      "decide_expense": "allowed"
    }
  },
  "next": {
    "open": [
      "in_progress",
      "resolved"
    ],
    "in_progress": [
      "on_hold",
      "resolved"
    ],
    "on_hold": [
      "in_progress"
    ],
    "resolved": [
      "closed",
      "in_progress"
    ],
    "closed": []
  },
  "moves": {
    "requester": {
      "own": {
        "open": [],
        "in_progress": [],
        "on_hold": [],
        "resolved": [
          "closed",
          "in_progress"
        ],
        "closed": []
      },
      "others": {
        "open": [],
        "in_progress": [],
        "on_hold": [],
        "resolved": [],
        "closed": []
      }
    },
    "observer": {
      "own": {
        "open": [],
        "in_progress": [],
        "on_hold": [],
        "resolved": [],
        "closed": []
      },
      "others": {
        "open": [],
        "in_progress": [],
        "on_hold": [],
        "resolved": [],
        "closed": []
      }
    },
    "agent": {
      "own": {
        "open": [
          "in_progress",
          "resolved"
        ],
        "in_progress": [
          "on_hold",
          "resolved"
        ],
        "on_hold": [
          "in_progress"
        ],
        "resolved": [
          "closed",
          "in_progress"
        ],
        "closed": []
      },
      "others": {
        "open": [
          "in_progress",
          "resolved"
        ],
        "in_progress": [
          "on_hold",
          "resolved"
        ],
        "on_hold": [
          "in_progress"
        ],
        "resolved": [
          "closed",
          "in_progress"
        ],
        "closed": []
      }
    },
    "admin": {
      "own": {
        "open": [
          "in_progress",
          "resolved"
        ],
        "in_progress": [
          "on_hold",
          "resolved"
        ],
        "on_hold": [
          "in_progress"
        ],
        "resolved": [
          "closed",
          "in_progress"
        ],
        "closed": []
      },
      "others": {
        "open": [
          "in_progress",
          "resolved"
        ],
        "in_progress": [
          "on_hold",
          "resolved"
        ],
        "on_hold": [
          "in_progress"
        ],
        "resolved": [
          "closed",
          "in_progress"
        ],
        "closed": []
      }
    }
  },
  "on_view": {
    "requester": {
      "open": null,
      "in_progress": null,
      "on_hold": null,
      "resolved": null,
      "closed": null
    },
    "observer": {
      "open": null,
      "in_progress": null,
      "on_hold": null,
      "resolved": null,
      "closed": null
    },
    "agent": {
      "open": "in_progress",
      "in_progress": null,
      "on_hold": null,
      "resolved": null,
      "closed": null
    },
    "admin": {
      "open": "in_progress",
      "in_progress": null,
      "on_hold": null,
      "resolved": null,
      "closed": null
    }
  }
};

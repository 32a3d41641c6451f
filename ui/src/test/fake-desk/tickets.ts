// Tickets, their comments and their activity. Which status moves a role may make comes from
// Rust's workflow (`rules.generated.ts`); each ticket's SLA is the one a test set in `slas`.

import type { Activity, ActivityAction, Comment, CreateTicket, Status, Ticket, TicketDetail, TicketQuery, TicketRow, TicketSla } from '../../lib/ipc';
import { RULES } from '../rules.generated';
import type { Accounts } from './account';
import { fail, ok, uuid } from './base';
import type { Seed } from './seed';
import { mostUrgent } from './sla';

export function ticketDesk({ me, people, customers, tickets }: Seed, { role }: Accounts, slas: Map<string, TicketSla>) {
  const comments: Comment[] = [];
  const activity: Activity[] = [];

  const name = (id: string | null) => people.find((p) => p.id === id)?.name ?? null;
  const customerName = (id: string | null) => customers.find((c) => c.id === id)?.name ?? null;
  /** The moves the user may make on a ticket, as Rust's workflow says for their role. */
  const movesOn = (t: Ticket) => RULES.moves[role()][t.requester_id === me.id ? 'own' : 'others'][t.status];

  function row(t: Ticket): TicketRow {
    const { id, number, title, status, priority, category, created_at, updated_at } = t;
    return {
      id,
      number,
      title,
      status,
      priority,
      category,
      requester_name: name(t.requester_id) ?? '',
      assignee_name: name(t.assignee_id),
      customer_name: customerName(t.customer_id),
      created_at,
      updated_at,
      sla: mostUrgent(slas.get(t.id)),
    };
  }

  function detail(t: Ticket): TicketDetail {
    return {
      ticket: t,
      allowed_moves: movesOn(t),
      requester_name: name(t.requester_id) ?? '',
      assignee_name: name(t.assignee_id),
      customer_name: customerName(t.customer_id),
      sla: slas.get(t.id) ?? null,
    };
  }

  function matches(t: Ticket, q: TicketQuery): boolean {
    const active = ['open', 'in_progress', 'on_hold'].includes(t.status);
    switch (q.view) {
      case 'my_open':
        if (t.assignee_id !== me.id || !active) return false;
        break;
      case 'unassigned':
        if (t.assignee_id !== null || !active) return false;
        break;
      case 'on_hold':
        if (t.status !== 'on_hold') return false;
        break;
      case 'recently_resolved':
        if (!['resolved', 'closed'].includes(t.status)) return false;
        break;
    }
    if (q.status && t.status !== q.status) return false;
    if (q.priority && t.priority !== q.priority) return false;
    if (q.category && t.category !== q.category) return false;
    if (q.customer && t.customer_id !== q.customer) return false;
    if (q.assignee) {
      const want = q.assignee.kind === 'me' ? me.id : q.assignee.kind === 'nobody' ? null : q.assignee.id;
      if (t.assignee_id !== want) return false;
    }
    if (q.search) {
      const words = q.search.toLowerCase().split(/\s+/).filter(Boolean);
      const text = `${t.title} ${t.description}`.toLowerCase();
      if (!words.every((w) => text.includes(w))) return false;
    }
    return true;
  }

  const find = (id: string) => tickets.find((t) => t.id === id);

  function record(t: Ticket, action: ActivityAction, field: string | null, before: unknown, after: unknown) {
    activity.push({ id: uuid(), ticket_id: t.id, actor_id: me.id, action, field, before, after, at: new Date().toISOString() });
  }

  const commands = {
    listTickets: (q: TicketQuery) => {
      const all = tickets.filter((t) => matches(t, q));
      const sorted =
        q.sort === 'oldest' ? all : q.sort === 'recently_updated' ? [...all].sort((a, b) => b.updated_at.localeCompare(a.updated_at)) : [...all].reverse();
      const offset = q.cursor ? Number(q.cursor) : 0;
      const limit = q.limit ?? 100;
      const items = sorted.slice(offset, offset + limit).map(row);
      const next = offset + limit < sorted.length ? String(offset + limit) : null;
      return ok({ items, next_cursor: next, total: sorted.length });
    },
    getTicket: (id: string) => (find(id) ? ok(detail(find(id)!)) : fail<TicketDetail>('not_found', 'ticket not found')),
    viewTicket: (id: string) => {
      const t = find(id);
      if (!t) return fail<TicketDetail>('not_found', 'ticket not found');
      const started = RULES.on_view[role()][t.status];
      if (started) {
        record(t, 'ticket.viewed', 'status', { status: t.status }, { status: started });
        Object.assign(t, { status: started, version: t.version + 1 });
      }
      return ok(detail(t));
    },
    createTicket: (input: CreateTicket) => {
      const title = input.title.trim();
      if (!title) return fail<Ticket>('invalid_field', 'title must not be empty', 'title');
      if ([...title].length > 200) {
        return fail<Ticket>('invalid_field', `title is too long: at most 200 characters, got ${[...title].length}`, 'title');
      }
      const now = new Date().toISOString();
      const t: Ticket = {
        id: uuid(),
        number: tickets.length + 1,
        title,
        description: input.description ?? '',
        status: 'open',
        priority: input.priority ?? 'medium',
        category: input.category ?? 'general',
        requester_id: me.id,
        assignee_id: input.assignee_id ?? null,
        customer_id: input.customer_id ?? null,
        hold_reason: null,
        created_at: now,
        updated_at: now,
        first_responded_at: null,
        resolved_at: null,
        closed_at: null,
        version: 1,
      };
      tickets.push(t);
      record(t, 'ticket.created', null, null, { title });
      return ok(t);
    },
    updateTicket: (id: string, patch: Record<string, unknown>) => {
      const t = find(id);
      if (!t) return fail<Ticket>('not_found', 'ticket not found');
      if (patch.version != null && patch.version !== t.version) {
        return fail<Ticket>('stale_version', 'the ticket changed since you opened it; reload it');
      }
      for (const [field, value] of Object.entries(patch)) {
        if (field === 'version' || value === undefined) continue;
        record(t, 'ticket.updated', field, { [field]: t[field as keyof Ticket] }, { [field]: value });
        Object.assign(t, { [field]: value });
      }
      t.version++;
      return ok(t);
    },
    transitionTicket: (id: string, to: Status, reason: string | null) => {
      const t = find(id);
      if (!t) return fail<Ticket>('not_found', 'ticket not found');
      if (!RULES.next[t.status].includes(to)) {
        return fail<Ticket>('illegal_transition', `a ticket that is ${t.status} cannot become ${to}`);
      }
      if (!movesOn(t).includes(to)) return fail<Ticket>('forbidden', `${role()}s cannot move a ticket from ${t.status} to ${to}`);
      if (to === 'on_hold' && !reason?.trim()) {
        return fail<Ticket>('invalid_field', 'putting a ticket on hold needs a reason', 'reason');
      }
      record(t, 'ticket.transitioned', 'status', { status: t.status }, { status: to, ...(reason ? { hold_reason: reason } : {}) });
      Object.assign(t, { status: to, hold_reason: to === 'on_hold' ? reason : null, version: t.version + 1 });
      return ok(t);
    },
    deleteTicket: (id: string) => {
      const i = tickets.findIndex((t) => t.id === id);
      if (i >= 0) tickets.splice(i, 1);
      return ok(null);
    },
    listComments: (id: string) => ok(comments.filter((c) => c.ticket_id === id)),
    addComment: (id: string, body: string, internal: boolean) => {
      if (!body.trim()) return fail<Comment>('invalid_field', 'body must not be empty', 'body');
      const c: Comment = { id: uuid(), ticket_id: id, author_id: me.id, body, internal, created_at: new Date().toISOString() };
      comments.push(c);
      return ok(c);
    },
    ticketActivity: (id: string) => ok(activity.filter((a) => a.ticket_id === id)),
    listPeople: () => ok(people),
  };

  return { comments, activity, row, matches, find, record, commands };
}

export type TicketDesk = ReturnType<typeof ticketDesk>;

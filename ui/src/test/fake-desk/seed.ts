// The demo data a fresh fake desk starts with: three people, three customers and `count` tickets
// spread over every status, priority, category and assignee.

import type { Customer, Person, Status, Ticket } from '../../lib/ipc';
import { at, uuid } from './base';

const TITLES = [
  'Printer on floor 3 jams on every job',
  'Cannot log in to the expense portal',
  'Laptop battery drains overnight',
  'Invoice INV-2041 charged twice',
  'VPN drops every ten minutes',
  'New starter needs a mail account',
  'Monitor flickers after the update',
  'Refund for cancelled subscription',
  'Password reset link has expired',
  'Shared drive is read-only',
];

export function seed(count: number) {
  const me: Person = { id: uuid(), name: 'Alex Morgan', email: null, role: 'admin' };
  const sam: Person = { id: uuid(), name: 'Sam Rivera', email: 'sam@example.com', role: 'agent' };
  const robin: Person = { id: uuid(), name: 'Robin Lee', email: 'robin@example.com', role: 'requester' };
  const people = [me, sam, robin];

  const customers: Customer[] = ['Acme Corp', 'Globex', 'Initech'].map((name, i) => ({
    id: uuid(),
    name,
    email: `help@${name.split(' ')[0].toLowerCase()}.example`,
    phone: null,
    company: name,
    notes: null,
    created_at: at(i),
    updated_at: at(i),
  }));

  const statuses: Status[] = ['open', 'in_progress', 'on_hold', 'resolved', 'closed'];
  const priorities = ['low', 'medium', 'high', 'urgent'] as const;
  const categories = ['general', 'hardware', 'software', 'access', 'billing', 'expense'];

  const tickets: Ticket[] = Array.from({ length: count }, (_, i) => ({
    id: uuid(),
    number: i + 1,
    title: `${TITLES[i % TITLES.length]}${i >= TITLES.length ? ` (${i + 1})` : ''}`,
    description: 'It started this morning. Steps to reproduce are in the attachment.',
    status: statuses[i % 5],
    priority: priorities[i % 4],
    category: categories[i % 6],
    requester_id: robin.id,
    assignee_id: i % 3 === 0 ? null : i % 3 === 1 ? me.id : sam.id,
    customer_id: i % 4 === 3 ? null : customers[i % 3].id,
    hold_reason: statuses[i % 5] === 'on_hold' ? 'Waiting for the vendor' : null,
    created_at: at(i * 10),
    updated_at: at(i * 10 + 5),
    first_responded_at: null,
    resolved_at: null,
    closed_at: null,
    version: 1,
  }));

  return { me, sam, robin, people, customers, categories, tickets };
}

export type Seed = ReturnType<typeof seed>;

// Customers; deleting one leaves its tickets without a customer.

import type { Customer } from '../../lib/ipc';
import { fail, ok, uuid } from './base';
import type { Seed } from './seed';
import type { TicketDesk } from './tickets';

export function customerCommands({ customers, tickets }: Seed, { row }: TicketDesk) {
  return {
    listCustomers: (search: string | null) =>
      ok(customers.filter((c) => !search || c.name.toLowerCase().includes(search.toLowerCase()))),
    getCustomer: (id: string) => {
      const customer = customers.find((c) => c.id === id);
      if (!customer) return fail<never>('not_found', 'customer not found');
      return ok({ customer, tickets: tickets.filter((t) => t.customer_id === id).map(row) });
    },
    createCustomer: (input: { name: string; email?: string | null; phone?: string | null; company?: string | null; notes?: string | null }) => {
      if (!input.name.trim()) return fail<Customer>('invalid_field', 'name must not be empty', 'name');
      const now = new Date().toISOString();
      const c: Customer = {
        id: uuid(),
        name: input.name.trim(),
        email: input.email ?? null,
        phone: input.phone ?? null,
        company: input.company ?? null,
        notes: input.notes ?? null,
        created_at: now,
        updated_at: now,
      };
      customers.push(c);
      return ok(c);
    },
    updateCustomer: (id: string, patch: Partial<Customer>) => {
      const c = customers.find((x) => x.id === id);
      if (!c) return fail<Customer>('not_found', 'customer not found');
      Object.assign(c, Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)));
      return ok(c);
    },
    deleteCustomer: (id: string) => {
      const i = customers.findIndex((c) => c.id === id);
      if (i >= 0) customers.splice(i, 1);
      for (const t of tickets) if (t.customer_id === id) t.customer_id = null;
      return ok(null);
    },
  };
}

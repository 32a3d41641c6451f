// What every part of the fake shares: answers in the bindings' shape, ids, the clock of the demo
// data, what each role may do, and the server the fake knows.

import type { Action, DeskError, ProviderInfo, Role, TicketQuery } from '../../lib/ipc';
import { RULES } from '../rules.generated';

export type Result<T> = { status: 'ok'; data: T } | { status: 'error'; error: DeskError };

// Copies, as IPC gives: the UI never holds the fake's own objects.
export const ok = <T>(data: T): Promise<Result<T>> => Promise.resolve({ status: 'ok', data: structuredClone(data) });
export const fail = <T>(code: DeskError['code'], message: string, field: string | null = null): Promise<Result<T>> =>
  Promise.resolve({ status: 'error', error: { code, message, field } });

/** What each role may do, as Rust's permission matrix says: the fake sends it as `can` (the
 *  actions not denied, as the desk does), the UI only reads it. */
export const CAN = Object.fromEntries(
  Object.entries(RULES.access).map(([role, row]) => [role, (Object.keys(row) as Action[]).filter((a) => row[a] !== 'denied')]),
) as Record<Role, Action[]>;

export const SERVER_URL = 'https://desk.example.com';
export const BUILTIN: ProviderInfo = { name: 'Tallydesk account', issuer: 'https://desk.example.com', builtin: true };
export const KEYCLOAK: ProviderInfo = { name: 'Acme SSO', issuer: 'https://sso.acme.example/realms/acme', builtin: false };

let counter = 0;
export const uuid = () => `00000000-0000-7000-8000-${(++counter).toString(16).padStart(12, '0')}`;

const start = Date.parse('2025-01-06T09:00:00Z');
/** The demo data's clock: `minutes` after the first demo ticket was opened. */
export const at = (minutes: number) => new Date(start + minutes * 60_000).toISOString();

export const EMPTY_QUERY: TicketQuery = {
  view: null,
  status: null,
  priority: null,
  assignee: null,
  category: null,
  customer: null,
  search: null,
  sort: 'newest',
  cursor: null,
  limit: null,
};

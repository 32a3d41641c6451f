// An in-memory stand-in for the Rust commands, for component tests (and the browser preview).
// It answers in the bindings' shape ({status, data} | {status, error}). Who may do what, and
// which status moves there are, come from Rust (`rules.generated.ts`); the rest is a sketch of
// the desk: tests set answers explicitly where behaviour depends on more.

import type {
  Account,
  Action,
  Activity,
  ActivityAction,
  CalendarInput,
  CalendarRecord,
  ClaimRef,
  ClaimTarget,
  Comment,
  CreateTicket,
  Customer,
  DeskError,
  Expense,
  ExpenseInput,
  ExpenseQuery,
  ExpenseReview,
  Invitation,
  Member,
  Membership,
  ProviderInfo,
  Reading,
  Role,
  Session,
  ScanEvent,
  Mute,
  Person,
  Policy,
  PolicyInput,
  Preferences,
  Status,
  SyncStatus,
  Rejection,
  Ticket,
  TicketDetail,
  TicketQuery,
  TicketRow,
  TicketSla,
  TargetState,
  WorkspaceInfo,
} from '../lib/ipc';
import { RULES } from './rules.generated';

type Result<T> = { status: 'ok'; data: T } | { status: 'error'; error: DeskError };

// Copies, as IPC gives: the UI never holds the fake's own objects.
const ok = <T>(data: T): Promise<Result<T>> => Promise.resolve({ status: 'ok', data: structuredClone(data) });
const fail = <T>(code: DeskError['code'], message: string, field: string | null = null): Promise<Result<T>> =>
  Promise.resolve({ status: 'error', error: { code, message, field } });

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

/** What each role may do, as Rust's permission matrix says: the fake sends it as `can` (the
 *  actions not denied, as the desk does), the UI only reads it. */
const CAN = Object.fromEntries(
  Object.entries(RULES.access).map(([role, row]) => [role, (Object.keys(row) as Action[]).filter((a) => row[a] !== 'denied')]),
) as Record<Role, Action[]>;

export const SERVER_URL = 'https://desk.example.com';
export const BUILTIN: ProviderInfo = { name: 'Tallydesk account', issuer: 'https://desk.example.com', builtin: true };
export const KEYCLOAK: ProviderInfo = { name: 'Acme SSO', issuer: 'https://sso.acme.example/realms/acme', builtin: false };

let counter = 0;
const uuid = () => `00000000-0000-7000-8000-${(++counter).toString(16).padStart(12, '0')}`;

export function createFakeDesk({ tickets: count = 250, demo = true }: { tickets?: number; demo?: boolean } = {}) {
  const start = Date.parse('2025-01-06T09:00:00Z');
  const at = (minutes: number) => new Date(start + minutes * 60_000).toISOString();

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

  const comments: Comment[] = [];
  const activity: Activity[] = [];
  let preferences: Preferences = { theme: 'system', density: 'comfortable', server_url: '', last_view: '' };
  let hasDemo = demo;

  // Expenses, with what was read from their receipts.
  const expenses: { expense: Expense; reading: Reading | null }[] = [];
  const EXPENSE_CATEGORIES = ['travel', 'taxi', 'meals', 'lodging', 'fuel', 'office', 'software', 'other'];
  /** Scans asked for, for the test to answer: `send` delivers an event, `done` ends the command. */
  const scans: { paths: string[]; send: (event: ScanEvent) => void; done: () => void }[] = [];
  /** What the file chooser returns next. */
  let picked: string[] = [];

  // SLAs: the policies and calendars as stored, each ticket's SLA as a test sets it, what the
  // UI said is on screen, and the mute.
  const policies: Policy[] = [];
  const calendars: CalendarRecord[] = [];
  const slas = new Map<string, TicketSla>();
  /** Every `watchTicket` call, in order. */
  const watched: (string | null)[] = [];
  /** Alerts muted until (Rust keeps it; the tray menu can change it). */
  const state = { mutedUntil: null as string | null };
  const URGENCY: Record<TargetState['state'], number> = { breached: 0, at_risk: 1, running: 2, paused: 3, met: 4 };
  const mostUrgent = (sla: TicketSla | undefined) =>
    sla
      ? ([...sla.targets].sort((a, b) => URGENCY[a.state] - URGENCY[b.state] || a.remaining_seconds - b.remaining_seconds)[0] ?? null)
      : null;

  const name = (id: string | null) => people.find((p) => p.id === id)?.name ?? null;

  const cents = (amount: string) => Math.round(Number(amount.replace(/,/g, '')) * 100);
  const amountText = (minor: number) => (minor / 100).toFixed(2);

  function warnings(e: Pick<Expense, 'items' | 'total' | 'subtotal' | 'tax'>): string[] {
    const out: string[] = [];
    const expected = [e.subtotal, e.total].filter((v): v is string => v !== null).map(cents);
    if (e.items.length > 0 && expected.length > 0) {
      const sum = e.items.reduce((s, i) => s + cents(i.amount), 0);
      if (!expected.includes(sum)) {
        out.push(
          `The line items add up to ${amountText(sum)}, not ${amountText(expected[0])} ${e.subtotal !== null ? '(the subtotal)' : '(the total)'}.`,
        );
      }
    }
    if (e.tax !== null && e.total !== null && cents(e.tax) > cents(e.total)) out.push('The tax is larger than the total.');
    return out;
  }

  /** Checks a person's input as Rust does (the parts the tests rely on); the error, or the fields. */
  function parseExpense(input: ExpenseInput): DeskError | Partial<Expense> {
    const invalid = (field: string, message: string): DeskError => ({ code: 'invalid_field', message, field });
    const currency = input.currency.trim().toUpperCase();
    if (!/^[A-Z]{3}$/.test(currency)) return invalid('currency', `"${input.currency.trim()}" is not a three-letter currency code such as EUR`);
    const AMOUNT = /^(\d{1,3}(,\d{3})+|\d+)(\.\d{0,2})?$/;
    const amount = (field: string, v: string | null | undefined): DeskError | string | null => {
      const text = v?.trim();
      if (!text) return null;
      return AMOUNT.test(text) ? amountText(cents(text)) : invalid(field, `"${text}" is not an amount; write it like 1234.50`);
    };
    const total = amount('total', input.total);
    const subtotal = amount('subtotal', input.subtotal);
    const tax = amount('tax', input.tax);
    for (const a of [total, subtotal, tax]) if (a !== null && typeof a === 'object') return a;
    const spent = input.spent_on?.trim() || null;
    if (spent && !/^\d{4}-\d{2}-\d{2}$/.test(spent)) return invalid('spent_on', `"${spent}" is not a date; use YYYY-MM-DD`);
    if (!EXPENSE_CATEGORIES.includes(input.category)) return invalid('category', `"${input.category}" is not one of ${EXPENSE_CATEGORIES.join(', ')}`);
    const items = [];
    for (const [i, item] of input.items.entries()) {
      if (!item.description.trim()) return invalid('items', `line ${i + 1}: description must not be empty`);
      const a = amount('amount', item.amount);
      if (a === null) return invalid('items', `line ${i + 1}: amount must not be empty`);
      if (typeof a === 'object') return invalid('items', `line ${i + 1}: ${a.message}`);
      items.push({ description: item.description.trim(), quantity: item.quantity?.trim() || null, amount: a });
    }
    return {
      merchant: input.merchant?.trim() || null,
      spent_on: spent,
      currency,
      total: total as string | null,
      subtotal: subtotal as string | null,
      tax: tax as string | null,
      category: input.category,
      items,
      note: input.note?.trim() || null,
    };
  }

  const findExpense = (id: string) => expenses.find((x) => x.expense.id === id);

  function review(x: { expense: Expense; reading: Reading | null }): ExpenseReview {
    return {
      expense: x.expense,
      reading: x.reading,
      editable: x.expense.status === 'draft' && x.expense.requester_id === me.id,
      decidable: x.expense.status === 'submitted' && RULES.access[me.role].decide_expense !== 'denied',
    };
  }

  /** Adds an expense as a scan would (a draft of the current user, unless told otherwise). */
  function addExpense(fields: Partial<Expense> = {}, reading: Reading | null = null): Expense {
    const now = new Date().toISOString();
    const expense: Expense = {
      id: uuid(),
      status: 'draft',
      requester_id: me.id,
      requester_name: me.name,
      ticket: null,
      merchant: null,
      spent_on: null,
      currency: 'EUR',
      total: null,
      subtotal: null,
      tax: null,
      category: 'other',
      items: [],
      note: null,
      image: { sha256: 'ab'.repeat(32), media_type: 'image/jpeg', width: 400, height: 800 },
      source_name: 'receipt.jpg',
      warnings: [],
      decision: null,
      created_at: now,
      updated_at: now,
      version: 1,
      ...fields,
    };
    expense.warnings = warnings(expense);
    expenses.push({ expense, reading });
    return expense;
  }

  function claimRef(t: Ticket): ClaimRef {
    return { id: t.id, number: t.number, title: t.title, status: t.status };
  }
  const customerName = (id: string | null) => customers.find((c) => c.id === id)?.name ?? null;

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

  // Accounts: the local workspace until a test signs in. The servers the fake knows answer
  // `connectServer`; a sign-in waits in `signIns` until the test finishes or fails it.
  const servers = new Map<string, ProviderInfo[]>([[SERVER_URL, [BUILTIN, KEYCLOAK]]]);
  const memberships: Membership[] = [
    { tenant_id: uuid(), tenant_name: 'Acme Support', role: 'admin' },
    { tenant_id: uuid(), tenant_name: 'Globex IT', role: 'observer' },
  ];
  const auth = { account: { state: 'local' } as Account, password: 'correct horse battery' };
  const signIns: {
    serverUrl: string;
    issuer: string;
    succeed: () => void;
    fail: (code: DeskError['code'], message: string, field?: string | null) => void;
  }[] = [];
  /** Every `switchTenant` call, in order. */
  const switched: string[] = [];
  const members: Member[] = [
    { user_id: me.id, email: 'alex@example.com', name: me.name, role: 'admin' },
    { user_id: sam.id, email: sam.email, name: sam.name, role: 'agent' },
    { user_id: robin.id, email: robin.email, name: robin.name, role: 'requester' },
  ];
  const invitations: Invitation[] = [];

  function session(tenants: Membership[], tenantId: string, provider: ProviderInfo): Session {
    const membership = tenants.find((t) => t.tenant_id === tenantId) ?? tenants[0];
    me.role = membership.role;
    return {
      server_url: SERVER_URL,
      provider,
      user: { id: me.id, email: 'alex@example.com', name: me.name },
      tenants,
      tenant_id: membership.tenant_id,
      role: membership.role,
      keychain: { kind: 'stored' },
      can_change_password: provider.builtin,
    };
  }

  /** Signs the user in (as Rust would after the browser step), in the first of `tenants`. */
  function signInAs(role: Role | null = null, options: { tenants?: Membership[]; provider?: ProviderInfo; keychain?: Session['keychain'] } = {}) {
    const tenants = options.tenants ?? (role ? [{ ...memberships[0], role }] : memberships);
    const s = session(tenants, tenants[0].tenant_id, options.provider ?? BUILTIN);
    auth.account = { state: 'signed_in', ...s, keychain: options.keychain ?? s.keychain };
  }

  /** Signed out of `SERVER_URL` (a sign-out, or a session that could not be renewed). */
  function signOutWith(notice: string | null = null) {
    auth.account = { state: 'signed_out', server_url: SERVER_URL, providers: servers.get(SERVER_URL) ?? [], notice };
  }

  const signedIn = () => (auth.account.state === 'signed_in' ? auth.account : null);

  // Sync: while signed in it is online and synced, unless a test sets `sync.status`; the count of
  // refused changes is always that of `sync.rejections`.
  const sync = {
    status: null as SyncStatus | null,
    rejections: [] as Rejection[],
    /** How many times "Sync now" asked Rust. */
    retries: 0,
  };
  function syncStatus(): SyncStatus {
    const base: SyncStatus = sync.status ?? {
      state: signedIn() ? 'online' : 'signed_out',
      unsent: 0,
      rejected: 0,
      last_synced_at: signedIn() ? at(0) : null,
      progress: null,
      error: null,
    };
    return { ...base, rejected: sync.rejections.length };
  }
  const role = (): Role => signedIn()?.role ?? 'admin';
  const may = (action: Action) => CAN[role()].includes(action);
  /** The moves the user may make on a ticket, as Rust's workflow says for their role. */
  const movesOn = (t: Ticket) => RULES.moves[role()][t.requester_id === me.id ? 'own' : 'others'][t.status];
  const notSignedIn = <T>() => fail<T>('not_signed_in', 'sign in to a Tallydesk server first');
  const refused = <T>() => fail<T>('forbidden', 'your role does not allow this');

  function info(): WorkspaceInfo {
    const views = ['all', 'my_open', 'unassigned', 'on_hold', 'recently_resolved'] as const;
    const account = signedIn();
    return {
      name: account ? (account.tenants.find((t) => t.tenant_id === account.tenant_id)?.tenant_name ?? '') : 'Local workspace',
      can: CAN[role()],
      me,
      has_demo_data: hasDemo,
      categories,
      view_counts: views.map((view) => [view, tickets.filter((t) => matches(t, { ...EMPTY_QUERY, view })).length]),
    };
  }

  const commands = {
    openWorkspace: () => ok(info()),
    startFreshWorkspace: () => ok({ info: info(), kept_file: '/data/workspace.db.corrupt-1' }),
    workspaceInfo: () => ok(info()),
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
    removeDemoData: () => {
      hasDemo = false;
      tickets.splice(0, tickets.length);
      return ok(null);
    },
    getPreferences: () => ok(preferences),
    setPreferences: (next: Preferences) => {
      const url = next.server_url.trim();
      if (url && !/^https?:\/\//.test(url)) {
        return fail<Preferences>('invalid_field', 'server URL: start it with https:// (or http:// for a local server)', 'server_url');
      }
      preferences = { ...next, server_url: url };
      return ok(preferences);
    },
    appInfo: () => ok({ version: '0.1.0', data_dir: '/home/alex/.local/share/app.tallydesk.desktop' }),
    scanReceipts: (paths: string[], channel: { onmessage: (event: ScanEvent) => void }) =>
      new Promise<Result<null>>((resolve) => {
        scans.push({ paths, send: (event) => channel.onmessage(structuredClone(event)), done: () => resolve({ status: 'ok', data: null }) });
      }),
    pickReceipts: (folders: boolean): Promise<string[]> => {
      void folders;
      const paths = picked;
      picked = [];
      return Promise.resolve(paths);
    },
    getExpense: (id: string) => {
      const x = findExpense(id);
      return x ? ok(review(x)) : fail<ExpenseReview>('not_found', 'expense not found');
    },
    saveDraft: (id: string, input: ExpenseInput) => {
      const x = findExpense(id);
      if (!x) return fail<Expense>('not_found', 'expense not found');
      if (x.expense.version !== input.version) return fail<Expense>('stale_version', 'the expense changed since you opened it; reload it');
      const parsed = parseExpense(input);
      if ('code' in parsed) return fail<Expense>(parsed.code, parsed.message, parsed.field);
      Object.assign(x.expense, parsed, { version: x.expense.version + 1, updated_at: new Date().toISOString() });
      x.expense.warnings = warnings(x.expense);
      return ok(x.expense);
    },
    submitExpense: (id: string, input: ExpenseInput, target: ClaimTarget) => {
      const x = findExpense(id);
      if (!x) return fail<Expense>('not_found', 'expense not found');
      if (x.expense.version !== input.version) return fail<Expense>('stale_version', 'the expense changed since you opened it; reload it');
      const parsed = parseExpense(input);
      if ('code' in parsed) return fail<Expense>(parsed.code, parsed.message, parsed.field);
      if (!parsed.merchant) return fail<Expense>('invalid_field', 'merchant must not be empty', 'merchant');
      if (!parsed.spent_on) return fail<Expense>('invalid_field', 'the date must not be empty', 'spent_on');
      if (!parsed.total) return fail<Expense>('invalid_field', 'the total must not be empty', 'total');
      let ticket: Ticket | undefined;
      if (target.kind === 'existing') {
        ticket = find(target.ticket_id);
        if (!ticket) return fail<Expense>('not_found', 'ticket not found');
      } else {
        const title = target.title?.trim() || `Expense claim: ${parsed.merchant}, ${parsed.spent_on}`;
        if (title.length > 200) return fail<Expense>('invalid_field', 'title is too long', 'title');
        const now = new Date().toISOString();
        ticket = {
          ...tickets[0],
          id: uuid(),
          number: tickets.length + 1,
          title,
          description: '',
          status: 'open',
          priority: 'medium',
          category: 'expense',
          requester_id: me.id,
          assignee_id: null,
          customer_id: null,
          hold_reason: null,
          created_at: now,
          updated_at: now,
          version: 1,
        };
        tickets.push(ticket);
      }
      Object.assign(x.expense, parsed, { status: 'submitted', ticket: claimRef(ticket), version: x.expense.version + 1 });
      x.expense.warnings = warnings(x.expense);
      record(ticket, 'expense.submitted', null, null, {
        expense_id: id,
        merchant: parsed.merchant,
        total: parsed.total,
        currency: parsed.currency,
      });
      return ok(x.expense);
    },
    decideExpense: (id: string, approve: boolean, note: string | null, version: number) => {
      const x = findExpense(id);
      if (!x) return fail<Expense>('not_found', 'expense not found');
      if (x.expense.version !== version) return fail<Expense>('stale_version', 'the expense changed since you opened it; reload it');
      if (!approve && !note?.trim()) {
        return fail<Expense>('invalid_field', 'say why the expense is rejected, so the requester can correct it', 'note');
      }
      const at = new Date().toISOString();
      Object.assign(x.expense, {
        status: approve ? 'approved' : 'rejected',
        decision: { approved: approve, by_name: me.name, at, note: note?.trim() || null },
        version: x.expense.version + 1,
      });
      const t = x.expense.ticket && find(x.expense.ticket.id);
      if (t) {
        record(t, approve ? 'expense.approved' : 'expense.rejected', null, null, {
          expense_id: id,
          merchant: x.expense.merchant,
          total: x.expense.total,
          currency: x.expense.currency,
          note: note?.trim() || null,
        });
      }
      return ok(x.expense);
    },
    discardDraft: (id: string) => {
      const i = expenses.findIndex((x) => x.expense.id === id);
      if (i >= 0) expenses.splice(i, 1);
      return ok(null);
    },
    listExpenses: (q: ExpenseQuery) => {
      const merchant = q.merchant?.trim().toLowerCase();
      const list = expenses
        .map((x) => x.expense)
        .filter(
          (e) =>
            (!q.from || (e.spent_on !== null && e.spent_on >= q.from)) &&
            (!q.to || (e.spent_on !== null && e.spent_on <= q.to)) &&
            (!merchant || (e.merchant ?? '').toLowerCase().includes(merchant)) &&
            (!q.category || e.category === q.category) &&
            (!q.status || e.status === q.status) &&
            (!q.ticket_id || e.ticket?.id === q.ticket_id),
        )
        .sort((a, b) => (b.spent_on ?? '').localeCompare(a.spent_on ?? ''));
      const sums = new Map<string, { minor: number; count: number }>();
      for (const e of list) {
        if (e.status === 'draft' || e.status === 'rejected' || e.total === null) continue;
        const sum = sums.get(e.currency) ?? { minor: 0, count: 0 };
        sums.set(e.currency, { minor: sum.minor + cents(e.total), count: sum.count + 1 });
      }
      const totals = [...sums].sort(([a], [b]) => a.localeCompare(b)).map(([currency, s]) => ({ currency, total: amountText(s.minor), count: s.count }));
      return ok({ expenses: list, totals, categories: EXPENSE_CATEGORIES });
    },
    exportExpensesCsv: (q: ExpenseQuery) => {
      void q;
      return ok<string | null>('/home/alex/expenses.csv');
    },
    watchTicket: (id: string | null): Promise<void> => {
      watched.push(id);
      return Promise.resolve();
    },
    muteAlerts: (mute: Mute): Promise<string | null> => {
      const hours = mute === 'one_hour' ? 1 : mute === 'until_tomorrow' ? 16 : 0;
      state.mutedUntil = hours ? new Date(Date.now() + hours * 3_600_000).toISOString() : null;
      return Promise.resolve(state.mutedUntil);
    },
    alertsMuted: (): Promise<string | null> => Promise.resolve(state.mutedUntil),
    listSlaPolicies: () => ok([...policies].sort((a, b) => a.position - b.position)),
    saveSlaPolicy: (id: string | null, input: PolicyInput, version: number | null) => {
      // The checks the tests rely on, with Rust's fields and messages.
      if (!input.name.trim()) return fail<Policy>('invalid_field', 'name must not be empty', 'name');
      const targets = ['first_response_minutes', 'next_response_minutes', 'resolution_minutes'] as const;
      if (targets.every((f) => input[f] == null)) {
        return fail<Policy>('invalid_field', 'set at least one target (first response, next response or resolution)', 'resolution_minutes');
      }
      for (const f of targets) {
        const m = input[f];
        if (m != null && (m < 1 || m > 525_600)) return fail<Policy>('invalid_field', `${m} minutes: a target is 1 minute to a year`, f);
      }
      if (input.business_hours && !input.calendar_id) return fail<Policy>('invalid_field', 'business hours need a calendar', 'calendar_id');
      if (id === null) {
        const policy: Policy = { ...input, name: input.name.trim(), id: uuid(), version: 1 };
        policies.push(policy);
        return ok(policy);
      }
      const policy = policies.find((p) => p.id === id);
      if (!policy) return fail<Policy>('not_found', 'policy not found');
      if (version !== null && version !== policy.version) return fail<Policy>('stale_version', 'the policy changed since you opened it; reload it');
      Object.assign(policy, input, { name: input.name.trim(), version: policy.version + 1 });
      return ok(policy);
    },
    deleteSlaPolicy: (id: string) => {
      const i = policies.findIndex((p) => p.id === id);
      if (i < 0) return fail<null>('not_found', 'policy not found');
      policies.splice(i, 1);
      return ok(null);
    },
    listCalendars: () => ok([...calendars].sort((a, b) => a.name.localeCompare(b.name))),
    saveCalendar: (id: string | null, input: CalendarInput, version: number | null) => {
      if (!input.name.trim()) return fail<CalendarRecord>('invalid_field', 'name must not be empty', 'name');
      if (!/^(UTC|[A-Z][A-Za-z_]+\/[A-Za-z_/]+)$/.test(input.time_zone)) {
        return fail<CalendarRecord>('invalid_field', `"${input.time_zone}" is not an IANA time zone such as Europe/Paris`, 'time_zone');
      }
      for (const ranges of Object.values(input.weekly)) {
        for (const [open, close] of ranges) {
          if (!/^\d\d:\d\d$/.test(open) || !/^\d\d:\d\d$/.test(close)) {
            return fail<CalendarRecord>('invalid_field', `"${/^\d\d:\d\d$/.test(open) ? close : open}" is not a time such as 09:00`, 'weekly');
          }
          if (open >= close) return fail<CalendarRecord>('invalid_field', `${open}–${close}: the hours must end after they start`, 'weekly');
        }
      }
      if (id === null) {
        const calendar: CalendarRecord = { ...structuredClone(input), name: input.name.trim(), id: uuid(), version: 1 };
        calendars.push(calendar);
        return ok(calendar);
      }
      const calendar = calendars.find((c) => c.id === id);
      if (!calendar) return fail<CalendarRecord>('not_found', 'calendar not found');
      if (version !== null && version !== calendar.version) {
        return fail<CalendarRecord>('stale_version', 'the calendar changed since you opened it; reload it');
      }
      Object.assign(calendar, structuredClone(input), { name: input.name.trim(), version: calendar.version + 1 });
      return ok(calendar);
    },
    deleteCalendar: (id: string) => {
      const i = calendars.findIndex((c) => c.id === id);
      if (i < 0) return fail<null>('not_found', 'calendar not found');
      const user = policies.find((p) => p.calendar_id === id);
      if (user) return fail<null>('calendar_in_use', `the policy "${user.name}" uses this calendar; change it first`);
      calendars.splice(i, 1);
      return ok(null);
    },
    account: () => ok(auth.account),
    connectServer: (url: string) => {
      const trimmed = url.trim().replace(/\/+$/, '');
      if (!/^https?:\/\/\S+$/.test(trimmed)) {
        return fail<never>('invalid_field', 'server URL: start it with https:// (or http:// for a local server)', 'url');
      }
      const providers = servers.get(trimmed);
      if (!providers) return fail<never>('not_a_tallydesk_server', `${trimmed} does not answer like a Tallydesk server`);
      auth.account = { state: 'signed_out', server_url: trimmed, providers, notice: null };
      return ok({ url: trimmed, providers });
    },
    signIn: (serverUrl: string, issuer: string) =>
      new Promise<Result<Session>>((resolve) => {
        const provider = servers.get(serverUrl)?.find((p) => p.issuer === issuer);
        if (!provider) return resolve({ status: 'error', error: { code: 'not_found', message: 'no such identity provider', field: null } });
        const entry = {
          serverUrl,
          issuer,
          succeed: () => {
            signInAs(null, { provider });
            signIns.splice(signIns.indexOf(entry), 1);
            resolve({ status: 'ok', data: structuredClone(signedIn()!) });
          },
          fail: (code: DeskError['code'], message: string, field: string | null = null) => {
            signIns.splice(signIns.indexOf(entry), 1);
            resolve({ status: 'error', error: { code, message, field } });
          },
        };
        signIns.push(entry);
      }),
    cancelSignIn: () => {
      for (const s of [...signIns]) s.fail('sign_in_cancelled', 'sign-in was cancelled');
      return ok(null);
    },
    signOut: () => {
      if (!signedIn()) return notSignedIn<null>();
      signOutWith(null);
      me.role = 'admin';
      return ok(null);
    },
    disconnectServer: () => {
      auth.account = { state: 'local' };
      me.role = 'admin';
      return ok(null);
    },
    switchTenant: (tenantId: string) => {
      const account = signedIn();
      if (!account) return notSignedIn<Session>();
      if (!account.tenants.some((t) => t.tenant_id === tenantId)) return fail<Session>('forbidden', 'you are not a member of that tenant');
      switched.push(tenantId);
      auth.account = { ...account, ...session(account.tenants, tenantId, account.provider), keychain: account.keychain };
      return ok(signedIn()!);
    },
    changePassword: (currentPassword: string, newPassword: string) => {
      if (!signedIn()?.can_change_password) return refused<null>();
      if (currentPassword !== auth.password) return fail<null>('wrong_password', 'the current password is not right', 'current_password');
      if ([...newPassword].length < 12) {
        return fail<null>('invalid_field', `the new password is too short: at least 12 characters, got ${[...newPassword].length}`, 'new_password');
      }
      auth.password = newPassword;
      return ok(null);
    },
    listMembers: () => (!signedIn() ? notSignedIn<Member[]>() : may('view_members') ? ok(members) : refused<Member[]>()),
    setMemberRole: (userId: string, next: Role) => {
      if (!signedIn()) return notSignedIn<Member>();
      if (!may('manage_members')) return refused<Member>();
      const member = members.find((m) => m.user_id === userId);
      if (!member) return fail<Member>('not_found', 'member not found');
      if (member.role === 'admin' && next !== 'admin' && members.filter((m) => m.role === 'admin').length === 1) {
        return fail<Member>('last_admin', 'the last admin cannot stop being an admin; make someone else admin first');
      }
      member.role = next;
      return ok(member);
    },
    removeMember: (userId: string) => {
      if (!signedIn()) return notSignedIn<null>();
      if (!may('manage_members')) return refused<null>();
      const i = members.findIndex((m) => m.user_id === userId);
      if (i < 0) return fail<null>('not_found', 'member not found');
      if (members[i].role === 'admin' && members.filter((m) => m.role === 'admin').length === 1) {
        return fail<null>('last_admin', 'a tenant needs at least one admin: make someone else admin first');
      }
      members.splice(i, 1);
      return ok(null);
    },
    listInvitations: () => (!signedIn() ? notSignedIn<Invitation[]>() : may('manage_invitations') ? ok(invitations) : refused<Invitation[]>()),
    inviteMember: (email: string, invitedRole: Role) => {
      if (!signedIn()) return notSignedIn<Invitation>();
      if (!may('manage_invitations')) return refused<Invitation>();
      const address = email.trim();
      if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(address)) return fail<Invitation>('invalid_field', `"${address}" is not an email address`, 'email');
      // As the server answers: codes of their own, naming no field.
      if (members.some((m) => m.email === address)) return fail<Invitation>('already_member', 'someone with this email is already a member');
      if (invitations.some((i) => i.email === address && i.accepted_at === null)) {
        return fail<Invitation>('already_invited', 'this email already has a pending invitation to this tenant');
      }
      const id = uuid();
      const invitation: Invitation = {
        id,
        email: address,
        role: invitedRole,
        invited_by: me.id,
        created_at: new Date().toISOString(),
        accepted_at: null,
      };
      invitations.push(invitation);
      // As the server does: the link to accept is in the answer that creates it, not in lists.
      return ok({ ...invitation, accept_url: `${SERVER_URL}/accept/${id}` });
    },
    revokeInvitation: (id: string) => {
      if (!signedIn()) return notSignedIn<null>();
      const i = invitations.findIndex((x) => x.id === id);
      if (i < 0) return fail<null>('not_found', 'invitation not found');
      if (invitations[i].accepted_at !== null) {
        return fail<null>('invitation_accepted', 'this invitation was already accepted: remove the member instead');
      }
      invitations.splice(i, 1);
      return ok(null);
    },
    syncStatus: () => ok(syncStatus()),
    retrySync: () => {
      sync.retries++;
      return ok(null);
    },
    syncRejections: (ticketId: string | null) => ok(sync.rejections.filter((r) => ticketId === null || r.ticket_id === ticketId)),
    dismissRejection: (seq: number) => {
      const i = sync.rejections.findIndex((r) => r.seq === seq);
      if (i >= 0) sync.rejections.splice(i, 1);
      return ok(null);
    },
    openClaims: () =>
      ok(
        tickets
          .filter((t) => t.category === 'expense' && t.requester_id === me.id && !['resolved', 'closed'].includes(t.status))
          .reverse()
          .map(claimRef),
      ),
  };

  return {
    commands,
    me,
    sam,
    robin,
    people,
    customers,
    tickets,
    comments,
    activity,
    expenses,
    scans,
    addExpense,
    policies,
    calendars,
    /** Each ticket's SLA, by ticket id, as rows and details report it. */
    slas,
    watched,
    state,
    auth,
    servers,
    memberships,
    signIns,
    switched,
    members,
    invitations,
    signInAs,
    signOutWith,
    sync,
    /** The sync status as `syncStatus` answers it now. */
    syncStatus,
    /** Makes the next file chooser return `paths`. */
    pick(paths: string[]) {
      picked = paths;
    },
    get preferences() {
      return preferences;
    },
  };
}

const EMPTY_QUERY: TicketQuery = {
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

export type FakeDesk = ReturnType<typeof createFakeDesk>;

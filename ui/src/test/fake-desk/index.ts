// An in-memory stand-in for the Rust commands, for component tests (and the browser preview).
// It answers in the bindings' shape ({status, data} | {status, error}). Who may do what, and
// which status moves there are, come from Rust (`rules.generated.ts`); the rest is a sketch of
// the desk: tests set answers explicitly where behaviour depends on more.
//
// One file per part of the desk, each owning its state and its commands: `seed` (the demo
// data), `account` (sign-in and tenants), `members`, `sync`, `sla`, `tickets`, `customers`,
// `expenses` and `workspace`; `base` holds what they share.

import { accounts } from './account';
import { customerCommands } from './customers';
import { expenseDesk } from './expenses';
import { tenantMembers } from './members';
import { seed } from './seed';
import { slaDesk } from './sla';
import { syncing } from './sync';
import { ticketDesk } from './tickets';
import { workspace } from './workspace';

export { BUILTIN, KEYCLOAK, SERVER_URL } from './base';

export function createFakeDesk({ tickets: count = 250, demo = true }: { tickets?: number; demo?: boolean } = {}) {
  // The order matters to the ids: the demo data takes the first ones, the tenants the next.
  const data = seed(count);
  const account = accounts(data.me);
  const team = tenantMembers(data, account);
  const syncs = syncing(account);
  const sla = slaDesk();
  const desk = ticketDesk(data, account, sla.slas);
  const money = expenseDesk(data, desk);
  const home = workspace(data, account, desk, demo);

  const commands = {
    ...home.commands,
    ...desk.commands,
    ...customerCommands(data, desk),
    ...money.commands,
    ...sla.commands,
    ...account.commands,
    ...team.commands,
    ...syncs.commands,
  };

  return {
    commands,
    me: data.me,
    sam: data.sam,
    robin: data.robin,
    people: data.people,
    customers: data.customers,
    tickets: data.tickets,
    comments: desk.comments,
    activity: desk.activity,
    expenses: money.expenses,
    scans: money.scans,
    addExpense: money.addExpense,
    policies: sla.policies,
    calendars: sla.calendars,
    /** Each ticket's SLA, by ticket id, as rows and details report it. */
    slas: sla.slas,
    watched: sla.watched,
    state: sla.state,
    auth: account.auth,
    servers: account.servers,
    memberships: account.memberships,
    signIns: account.signIns,
    switched: account.switched,
    members: team.members,
    invitations: team.invitations,
    signInAs: account.signInAs,
    signOutWith: account.signOutWith,
    sync: syncs.sync,
    /** The sync status as `syncStatus` answers it now. */
    syncStatus: syncs.syncStatus,
    /** Makes the next file chooser return `paths`. */
    pick: money.pick,
    get preferences() {
      return home.preferences;
    },
  };
}

export type FakeDesk = ReturnType<typeof createFakeDesk>;

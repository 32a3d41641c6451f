// Sync with the server, as the UI shows it. Rust runs the sync and sends its status with the
// `sync-status` event; the status lives in the query layer like everything else read from Rust.
// When a sync has pulled the server's changes (the last-synced time moves), every screen reads
// again, so a colleague's edit appears without anyone asking.

import { listen } from '@tauri-apps/api/event';

import { api, type Intent, type SyncStatus } from './ipc';
import { queries } from './queries';
import { getQueryData, invalidate, setQueryData, type QueryKey } from './query.svelte';

/** How the indicator looks: each has its own icon and words, never colour alone. */
export type SyncLook = 'synced' | 'syncing' | 'offline' | 'rejected' | 'idle';

const count = (n: number, one: string, many: string) => `${n.toLocaleString()} ${n === 1 ? one : many}`;

/** The indicator's words for `status`. */
export function describeSync(status: SyncStatus): { look: SyncLook; label: string } {
  const rejected = count(status.rejected, 'change rejected', 'changes rejected');
  switch (status.state) {
    case 'signed_out':
      // Signed in, but the sync has not started yet (the app just opened), or the session ended.
      return status.error ? { look: 'idle', label: 'Not syncing' } : { look: 'syncing', label: 'Connecting…' };
    case 'syncing':
      return { look: 'syncing', label: 'Syncing…' };
    case 'offline': {
      const unsent = status.unsent > 0 ? ` — ${count(status.unsent, 'unsent change', 'unsent changes')}` : '';
      return { look: 'offline', label: `Offline${unsent}${status.rejected > 0 ? `, ${rejected}` : ''}` };
    }
    case 'online':
      if (status.rejected > 0) return { look: 'rejected', label: rejected };
      // A change made a moment ago: the sync that sends it starts after a short pause.
      if (status.unsent > 0) return { look: 'syncing', label: 'Syncing…' };
      return { look: 'synced', label: 'Synced' };
  }
}

/** What to read again after the status went from `before` to `next`. */
export function staleAfter(before: SyncStatus | undefined, next: SyncStatus): QueryKey[] {
  // A sync finished: what it pulled (and the replay of my pending changes over it, which
  // undoes refused ones) may change any screen.
  if (next.last_synced_at !== null && next.last_synced_at !== before?.last_synced_at) return [[]];
  if (before && before.rejected !== next.rejected) return [['sync-rejections']];
  return [];
}

/** Takes a status Rust sent, and has the screens it makes stale read again. */
export function syncStatusArrived(next: SyncStatus): Promise<void> {
  const before = getQueryData(queries.syncStatus());
  setQueryData(queries.syncStatus(), next);
  const stale = staleAfter(before, next);
  return stale.length > 0 ? invalidate(...stale) : Promise.resolve();
}

/** Follows the `sync-status` event. Returns the function that stops. */
export function followSync(): () => void {
  let stop: (() => void) | null = null;
  let gone = false;
  listen<SyncStatus>('sync-status', ({ payload }) => void syncStatusArrived(payload)).then(
    (unlisten) => {
      if (gone) unlisten();
      else stop = unlisten;
    },
    // Not in the app's window (the browser preview): nothing sends it.
    () => {},
  );
  return () => {
    gone = true;
    stop?.();
  };
}

/** Asks Rust now how many changes have not reached the server (0 when it cannot say). */
export async function unsentChanges(): Promise<number> {
  try {
    const status = await api.syncStatus();
    setQueryData(queries.syncStatus(), status);
    return status.unsent;
  } catch {
    return 0;
  }
}

/** Before leaving the server with `unsent` changes queued: what happens to them. Rust keeps
 *  the outbox through sign-out and disconnect, tagged with its server and organisation, and
 *  sends it the next time the app is signed in there. */
export function unsentWarning(
  unsent: number,
  leaving: 'sign_out' | 'disconnect' | 'work_offline',
  where: { server: string; tenant?: string },
): string {
  const changes = `${count(unsent, 'change', 'changes')} ${unsent === 1 ? 'hasn’t' : 'haven’t'} reached the server yet.`;
  const them = unsent === 1 ? 'It stays' : 'They stay';
  const tenant = where.tenant ? ` to ${where.tenant}` : '';
  switch (leaving) {
    case 'sign_out':
      return `${changes} Sign out anyway? ${them} on this computer and ${unsent === 1 ? 'is' : 'are'} sent when you sign in${tenant} again.`;
    case 'disconnect':
      return `${changes} Disconnect anyway? ${them} on this computer and ${unsent === 1 ? 'is' : 'are'} sent if you connect to ${where.server} and sign in${tenant} again. Until then, Tallydesk works on this computer only.`;
    case 'work_offline':
      return `${changes} Work offline anyway? ${them} on this computer and ${unsent === 1 ? 'is' : 'are'} sent if you connect to ${where.server} and sign in again.`;
  }
}

const TRANSITION: Record<string, string> = {
  in_progress: 'Move to in progress',
  on_hold: 'Put on hold',
  resolved: 'Resolve',
  closed: 'Close ticket',
  open: 'Reopen',
};

const FIELD: Record<string, string> = {
  title: 'title',
  description: 'description',
  priority: 'priority',
  category: 'category',
  assignee_id: 'assignee',
  customer_id: 'customer',
};

function list(words: string[]): string {
  return words.length <= 1 ? (words[0] ?? '') : `${words.slice(0, -1).join(', ')} and ${words[words.length - 1]}`;
}

/** A queued change as the person made it: "Put on hold", "Change the priority". */
export function changeLabel(intent: Intent): string {
  switch (intent.op) {
    case 'ticket.create':
      return `Create ticket “${intent.args.title}”`;
    case 'ticket.update': {
      const args = intent.args as Record<string, unknown>;
      const fields = Object.keys(FIELD).filter((k) => args[k] !== undefined && args[k] !== null);
      return fields.length > 0 ? `Change the ${list(fields.map((f) => FIELD[f]))}` : 'Edit the ticket';
    }
    case 'ticket.transition':
      return TRANSITION[intent.args.to] ?? 'Change the status';
    case 'comment.create':
      return intent.args.internal ? 'Add an internal note' : 'Reply';
    case 'expense.create':
      return `File the expense from ${intent.args.merchant}`;
    case 'expense.decide':
      return intent.args.approve ? 'Approve the expense' : 'Reject the expense';
    case 'ticket.delete':
      return 'Delete the ticket';
    case 'customer.create':
      return `Add customer “${intent.args.name}”`;
    case 'customer.update':
      return intent.args.name ? `Change customer “${intent.args.name}”` : 'Change a customer';
    case 'customer.delete':
      return 'Delete a customer';
  }
}

/** "Your change ‘Put on hold’ was refused: the ticket is closed." A refused expense is a draft
 * again on this computer, and the message says so. */
export function refusal(intent: Intent, message: string): string {
  const reason = message.trim();
  const said = `Your change ‘${changeLabel(intent)}’ was refused: ${/[.!?]$/.test(reason) ? reason : `${reason}.`}`;
  return intent.op === 'expense.create'
    ? `${said} The expense is a draft again in Expenses: correct it and file it once more.`
    : said;
}

// Sync: while signed in it is online and synced, unless a test sets `sync.status`; the count of
// refused changes is always that of `sync.rejections`.

import type { Rejection, SyncStatus } from '../../lib/ipc';
import type { Accounts } from './account';
import { at, ok } from './base';

export function syncing({ signedIn }: Accounts) {
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

  const commands = {
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
  };

  return { sync, syncStatus, commands };
}

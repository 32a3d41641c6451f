// After the account changes (signed in or out, another tenant, back to local), everything read
// from Rust may belong to someone else: the account is read first, so the app shows the right
// screen, then every other query is refetched (or, when unused, marked stale).

import { tick } from 'svelte';
import { api } from './ipc';
import { queries } from './queries';
import { invalidate, setQueryData } from './query.svelte';
import { navigate, router } from './router.svelte';

/** Reads the account again and refreshes what the UI shows. `home` goes back to the queue (a
 *  ticket on screen may not exist in the new tenant). */
export async function accountChanged({ home = false } = {}) {
  setQueryData(queries.account(), await api.account());
  if (home || (router.route.name !== 'settings' && router.route.name !== 'queue')) {
    navigate({ name: 'queue', view: 'all' }, { replace: true });
  }
  await tick();
  await invalidate([]);
}

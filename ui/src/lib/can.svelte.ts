// What the user may do here, as Rust says in `workspace.can`. Screens hide what is not allowed;
// the rules themselves live in Rust (and the server enforces them again).

import type { Action } from './ipc';
import { queries } from './queries';
import { useQuery } from './query.svelte';

/** A function telling whether the workspace allows `action`, following the workspace as it changes. */
export function useCan(): (action: Action) => boolean {
  const workspace = useQuery(queries.workspace);
  return (action) => workspace.data?.can.includes(action) ?? false;
}

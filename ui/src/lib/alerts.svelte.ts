// Do not disturb. Rust keeps the mute; it has no command to read it back, so the UI remembers the
// answer of its own last `muteAlerts` call (a mute set from the tray menu is not seen here).

import { api, type Mute } from './ipc';

export const alerts = $state<{ mutedUntil: string | null }>({ mutedUntil: null });

/** Mutes (or resumes) alerts; resolves to until when they are muted. */
export async function muteAlerts(mute: Mute): Promise<string | null> {
  const until = await api.muteAlerts(mute);
  alerts.mutedUntil = until;
  return until;
}

/** Until when alerts are muted at `now`, or `null` when they are not. */
export function mutedUntil(now: number): string | null {
  const until = alerts.mutedUntil;
  return until && Date.parse(until) > now ? until : null;
}

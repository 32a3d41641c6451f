// Do not disturb. Rust keeps the mute; the UI reads it at start and follows changes made from
// the tray menu (the `alerts-muted` event).

import { listen } from '@tauri-apps/api/event';

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

/** Reads the mute and follows the tray menu's changes. Returns the function that stops. */
export function followMute(): () => void {
  let stop: (() => void) | null = null;
  let gone = false;
  api.alertsMuted().then(
    (until) => {
      if (!gone) alerts.mutedUntil = until;
    },
    () => {},
  );
  listen<string | null>('alerts-muted', ({ payload }) => {
    alerts.mutedUntil = payload;
  }).then(
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

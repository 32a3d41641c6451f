// Tells Rust which ticket is on screen: its SLA alerts would only repeat what the person is
// looking at. A hidden window (minimised, in the tray) shows nothing, so then no ticket is watched.

import { api, type TicketId } from './ipc';

let shown: TicketId | null = null;
let sent: TicketId | null = null;
let listening = false;
/** Calls go one after the other, so Rust hears the last one last. */
let queue: Promise<unknown> = Promise.resolve();

function sync() {
  const want = typeof document !== 'undefined' && document.hidden ? null : shown;
  if (want === sent) return;
  sent = want;
  queue = queue.then(() => api.watchTicket(want)).catch(() => {});
}

function listen() {
  if (listening || typeof document === 'undefined') return;
  listening = true;
  document.addEventListener('visibilitychange', sync);
}

/** The ticket screen shows `id` until the function returned is called. */
export function watchTicket(id: TicketId): () => void {
  listen();
  shown = id;
  sync();
  return () => {
    // Another ticket may be on screen already (switching tickets mounts the next one first).
    if (shown !== id) return;
    shown = null;
    sync();
  };
}

/** Forgets what was sent (a fresh fake desk between tests). */
export function resetWatch() {
  shown = null;
  sent = null;
}

// The time as the countdowns show it: one timer for the whole app, ticking every 30 seconds while
// something on screen reads it, and none at all otherwise. Nothing here asks Rust.

import { createSubscriber } from 'svelte/reactivity';

export const TICK_MS = 30_000;

const subscribe = createSubscriber((update) => {
  const timer = setInterval(update, TICK_MS);
  return () => clearInterval(timer);
});

/** Now, in milliseconds. Read in a component or effect, that reads it again on every tick. */
export function clockNow(): number {
  subscribe();
  return Date.now();
}

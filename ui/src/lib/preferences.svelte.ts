// Preferences live in Rust (tauri-plugin-store). The cached copy changes at once so the UI
// responds, saves go out one at a time, and a refused save puts the changed fields back.

import type { Density, Preferences, Theme } from './ipc';
import { api } from './ipc';
import { queries } from './queries';
import { getQueryData, setQueryData } from './query.svelte';

export const DEFAULT_PREFERENCES: Preferences = {
  theme: 'system',
  density: 'comfortable',
  server_url: '',
  last_view: '',
};

/** The saved preferences Rust hands the page before its scripts run; null outside the app (the
 *  browser preview, tests). */
export function startPreferences(): Preferences | null {
  const given = (globalThis as { __TALLYDESK_PREFERENCES__?: Partial<Preferences> }).__TALLYDESK_PREFERENCES__;
  return given ? { ...DEFAULT_PREFERENCES, ...given } : null;
}

let queue: Promise<unknown> = Promise.resolve();
let pending = 0;

export function currentPreferences(): Preferences {
  return getQueryData(queries.preferences()) ?? DEFAULT_PREFERENCES;
}

/** Changes some preferences; resolves to what Rust saved, or rejects with its `AppError`. */
export function savePreferences(patch: Partial<Preferences>): Promise<Preferences> {
  const spec = queries.preferences();
  const before = currentPreferences();
  setQueryData(spec, { ...before, ...patch });
  pending++;
  const run = async () => {
    try {
      const saved = await api.setPreferences(currentPreferences());
      if (pending === 1) setQueryData(spec, saved);
      return saved;
    } catch (error) {
      const undo = Object.fromEntries(Object.keys(patch).map((k) => [k, before[k as keyof Preferences]]));
      setQueryData(spec, { ...currentPreferences(), ...undo });
      throw error;
    } finally {
      pending--;
    }
  };
  const result = queue.then(run, run);
  queue = result.catch(() => undefined);
  return result;
}

const darkQuery = typeof matchMedia === 'function' ? matchMedia('(prefers-color-scheme: dark)') : null;

/** Sets the theme (`data-theme`, `color-scheme`) and density (`data-density`) on the page. */
export function applyAppearance(theme: Theme, density: Density) {
  const dark = theme === 'dark' || (theme === 'system' && (darkQuery?.matches ?? false));
  const root = document.documentElement;
  root.dataset.theme = dark ? 'dark' : 'light';
  root.dataset.density = density;
  root.style.colorScheme = dark ? 'dark' : 'light';
}

/** Calls `changed` when the system switches between light and dark. */
export function onSystemThemeChange(changed: () => void): () => void {
  darkQuery?.addEventListener('change', changed);
  return () => darkQuery?.removeEventListener('change', changed);
}

// Renders the whole app over a fake of the Rust commands. Each test file mocks the bindings with
// `vi.mock('../bindings', () => import('./fake-bindings'))`.

import { render, screen } from '@testing-library/svelte';
import App from '../App.svelte';
import { clearQueries } from '../lib/query.svelte';
import { clearFilters, queue } from '../lib/queue.svelte';
import { router, type Route, formatRoute } from '../lib/router.svelte';
import { notices } from '../lib/notices.svelte';
import { clearExpenseFilters } from '../lib/expense-filters.svelte';
import { scans } from '../lib/scans.svelte';
import { alerts } from '../lib/alerts.svelte';
import { resetWatch } from '../lib/watch';
import { setDesk } from './fake-bindings';
import { createFakeDesk, type FakeDesk } from './fake-desk';

/** A fresh fake desk, with fresh UI state around it. */
export function installDesk(options?: Parameters<typeof createFakeDesk>[0]): FakeDesk {
  const desk = createFakeDesk(options);
  setDesk(desk);
  clearQueries();
  clearFilters();
  Object.assign(queue, { view: 'all', sort: 'newest', selected: 0 });
  notices.splice(0, notices.length);
  scans.list.splice(0, scans.list.length);
  Object.assign(scans, { open: true, announcement: '' });
  clearExpenseFilters();
  resetWatch();
  alerts.mutedUntil = null;
  goTo({ name: 'queue', view: 'all' });
  document.documentElement.removeAttribute('data-theme');
  return desk;
}

export function goTo(route: Route) {
  history.replaceState(null, '', `#/${formatRoute(route)}`);
  router.route = route;
}

/** Renders the app and waits until the workspace is open. */
export async function renderApp() {
  const result = render(App);
  await screen.findByRole('navigation', { name: 'Views' });
  return result;
}

/** Renders the app while signed out of a server, and waits for the sign-in screen. */
export async function renderSignIn() {
  const result = render(App);
  await screen.findByRole('heading', { level: 1, name: 'Sign in to Tallydesk' });
  return result;
}

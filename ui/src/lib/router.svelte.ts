// Which screen is shown. The route is also the `last_view` preference, restored on restart.

import type { CustomerId, ExpenseId, TicketId, TicketView } from './ipc';
import { VIEWS } from './labels';

export type Route =
  | { name: 'queue'; view: TicketView }
  | { name: 'ticket'; id: TicketId }
  | { name: 'customers' }
  | { name: 'customer'; id: CustomerId }
  | { name: 'expenses' }
  | { name: 'expense'; id: ExpenseId }
  | { name: 'members' }
  | { name: 'settings' };

export const DEFAULT_ROUTE: Route = { name: 'queue', view: 'all' };

export function formatRoute(route: Route): string {
  switch (route.name) {
    case 'queue':
      return `queue/${route.view}`;
    case 'ticket':
      return `ticket/${route.id}`;
    case 'customer':
      return `customer/${route.id}`;
    case 'expense':
      return `expense/${route.id}`;
    default:
      return route.name;
  }
}

export function parseRoute(text: string): Route | null {
  const [name, arg] = text.replace(/^#?\/?/, '').split('/');
  switch (name) {
    case 'queue':
      return VIEWS.includes(arg as TicketView) ? { name, view: arg as TicketView } : null;
    case 'ticket':
    case 'customer':
    case 'expense':
      return arg ? { name, id: arg } : null;
    case 'expenses':
    case 'customers':
    case 'members':
    case 'settings':
      return { name };
    default:
      return null;
  }
}

export const router = $state<{ route: Route }>({ route: parseRoute(location.hash) ?? DEFAULT_ROUTE });

/** Shows `route`, adding it to the history (or replacing the current entry). */
export function navigate(route: Route, { replace = false } = {}) {
  router.route = route;
  const url = `#/${formatRoute(route)}`;
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
}

/** Follows the back and forward buttons. Returns the function that stops following. */
export function followHistory(): () => void {
  const sync = () => {
    router.route = parseRoute(location.hash) ?? DEFAULT_ROUTE;
  };
  window.addEventListener('popstate', sync);
  return () => window.removeEventListener('popstate', sync);
}

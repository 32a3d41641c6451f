// The workspace itself: what it says about itself (name, what the user may do, view counts),
// its demo data, and the preferences and app information Rust keeps.

import type { Preferences, WorkspaceInfo } from '../../lib/ipc';
import type { Accounts } from './account';
import { CAN, EMPTY_QUERY, fail, ok } from './base';
import type { Seed } from './seed';
import type { TicketDesk } from './tickets';

export function workspace({ me, categories, tickets }: Seed, { signedIn, role }: Accounts, { matches }: TicketDesk, demo: boolean) {
  let preferences: Preferences = { theme: 'system', density: 'comfortable', server_url: '', last_view: '' };
  let hasDemo = demo;

  function info(): WorkspaceInfo {
    const views = ['all', 'my_open', 'unassigned', 'on_hold', 'recently_resolved'] as const;
    const account = signedIn();
    return {
      name: account ? (account.tenants.find((t) => t.tenant_id === account.tenant_id)?.tenant_name ?? '') : 'Local workspace',
      can: CAN[role()],
      me,
      has_demo_data: hasDemo,
      categories,
      view_counts: views.map((view) => [view, tickets.filter((t) => matches(t, { ...EMPTY_QUERY, view })).length]),
    };
  }

  const commands = {
    openWorkspace: () => ok(info()),
    startFreshWorkspace: () => ok({ info: info(), kept_file: '/data/workspace.db.corrupt-1' }),
    workspaceInfo: () => ok(info()),
    removeDemoData: () => {
      hasDemo = false;
      tickets.splice(0, tickets.length);
      return ok(null);
    },
    getPreferences: () => ok(preferences),
    setPreferences: (next: Preferences) => {
      const url = next.server_url.trim();
      if (url && !/^https?:\/\//.test(url)) {
        return fail<Preferences>('invalid_field', 'server URL: start it with https:// (or http:// for a local server)', 'server_url');
      }
      preferences = { ...next, server_url: url };
      return ok(preferences);
    },
    appInfo: () => ok({ version: '0.1.0', data_dir: '/home/alex/.local/share/app.tallydesk.desktop' }),
  };

  return {
    commands,
    get preferences() {
      return preferences;
    },
  };
}

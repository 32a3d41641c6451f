// Accounts: the local workspace until a test signs in. The servers the fake knows answer
// `connectServer`; a sign-in waits in `signIns` until the test finishes or fails it.

import type { Account, Action, DeskError, Membership, Person, ProviderInfo, Role, Session } from '../../lib/ipc';
import { BUILTIN, CAN, KEYCLOAK, SERVER_URL, fail, ok, uuid, type Result } from './base';

export function accounts(me: Person) {
  const servers = new Map<string, ProviderInfo[]>([[SERVER_URL, [BUILTIN, KEYCLOAK]]]);
  const memberships: Membership[] = [
    { tenant_id: uuid(), tenant_name: 'Acme Support', role: 'admin' },
    { tenant_id: uuid(), tenant_name: 'Globex IT', role: 'observer' },
  ];
  const auth = { account: { state: 'local' } as Account, password: 'correct horse battery' };
  const signIns: {
    serverUrl: string;
    issuer: string;
    succeed: () => void;
    fail: (code: DeskError['code'], message: string, field?: string | null) => void;
  }[] = [];
  /** Every `switchTenant` call, in order. */
  const switched: string[] = [];

  function session(tenants: Membership[], tenantId: string, provider: ProviderInfo): Session {
    const membership = tenants.find((t) => t.tenant_id === tenantId) ?? tenants[0];
    me.role = membership.role;
    return {
      server_url: SERVER_URL,
      provider,
      user: { id: me.id, email: 'alex@example.com', name: me.name },
      tenants,
      tenant_id: membership.tenant_id,
      role: membership.role,
      keychain: { kind: 'stored' },
      can_change_password: provider.builtin,
    };
  }

  /** Signs the user in (as Rust would after the browser step), in the first of `tenants`. */
  function signInAs(role: Role | null = null, options: { tenants?: Membership[]; provider?: ProviderInfo; keychain?: Session['keychain'] } = {}) {
    const tenants = options.tenants ?? (role ? [{ ...memberships[0], role }] : memberships);
    const s = session(tenants, tenants[0].tenant_id, options.provider ?? BUILTIN);
    auth.account = { state: 'signed_in', ...s, keychain: options.keychain ?? s.keychain };
  }

  /** Signed out of `SERVER_URL` (a sign-out, or a session that could not be renewed). */
  function signOutWith(notice: string | null = null) {
    auth.account = { state: 'signed_out', server_url: SERVER_URL, providers: servers.get(SERVER_URL) ?? [], notice };
  }

  const signedIn = () => (auth.account.state === 'signed_in' ? auth.account : null);
  const role = (): Role => signedIn()?.role ?? 'admin';
  const may = (action: Action) => CAN[role()].includes(action);
  const notSignedIn = <T>() => fail<T>('not_signed_in', 'sign in to a Tallydesk server first');
  const refused = <T>() => fail<T>('forbidden', 'your role does not allow this');

  const commands = {
    account: () => ok(auth.account),
    connectServer: (url: string) => {
      const trimmed = url.trim().replace(/\/+$/, '');
      if (!/^https?:\/\/\S+$/.test(trimmed)) {
        return fail<never>('invalid_field', 'server URL: start it with https:// (or http:// for a local server)', 'url');
      }
      const providers = servers.get(trimmed);
      if (!providers) return fail<never>('not_a_tallydesk_server', `${trimmed} does not answer like a Tallydesk server`);
      auth.account = { state: 'signed_out', server_url: trimmed, providers, notice: null };
      return ok({ url: trimmed, providers });
    },
    signIn: (serverUrl: string, issuer: string) =>
      new Promise<Result<Session>>((resolve) => {
        const provider = servers.get(serverUrl)?.find((p) => p.issuer === issuer);
        if (!provider) return resolve({ status: 'error', error: { code: 'not_found', message: 'no such identity provider', field: null } });
        const entry = {
          serverUrl,
          issuer,
          succeed: () => {
            signInAs(null, { provider });
            signIns.splice(signIns.indexOf(entry), 1);
            resolve({ status: 'ok', data: structuredClone(signedIn()!) });
          },
          fail: (code: DeskError['code'], message: string, field: string | null = null) => {
            signIns.splice(signIns.indexOf(entry), 1);
            resolve({ status: 'error', error: { code, message, field } });
          },
        };
        signIns.push(entry);
      }),
    cancelSignIn: () => {
      for (const s of [...signIns]) s.fail('sign_in_cancelled', 'sign-in was cancelled');
      return ok(null);
    },
    signOut: () => {
      if (!signedIn()) return notSignedIn<null>();
      signOutWith(null);
      me.role = 'admin';
      return ok(null);
    },
    disconnectServer: () => {
      auth.account = { state: 'local' };
      me.role = 'admin';
      return ok(null);
    },
    switchTenant: (tenantId: string) => {
      const account = signedIn();
      if (!account) return notSignedIn<Session>();
      if (!account.tenants.some((t) => t.tenant_id === tenantId)) return fail<Session>('forbidden', 'you are not a member of that tenant');
      switched.push(tenantId);
      auth.account = { ...account, ...session(account.tenants, tenantId, account.provider), keychain: account.keychain };
      return ok(signedIn()!);
    },
    changePassword: (currentPassword: string, newPassword: string) => {
      if (!signedIn()?.can_change_password) return refused<null>();
      if (currentPassword !== auth.password) return fail<null>('wrong_password', 'the current password is not right', 'current_password');
      if ([...newPassword].length < 12) {
        return fail<null>('invalid_field', `the new password is too short: at least 12 characters, got ${[...newPassword].length}`, 'new_password');
      }
      auth.password = newPassword;
      return ok(null);
    },
  };

  return { servers, memberships, auth, signIns, switched, signInAs, signOutWith, signedIn, role, may, notSignedIn, refused, commands };
}

export type Accounts = ReturnType<typeof accounts>;

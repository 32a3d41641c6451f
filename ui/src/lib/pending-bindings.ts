// The sign-in contract (issue 5) until src-tauri's generated bindings carry it: the types Rust
// will send and the commands it will answer, typed over the generated `commands`. When
// `../bindings` has them, this file goes and `ipc.ts` imports them from there.

import { commands as generated } from '../bindings';
import type { ErrorCode as GeneratedErrorCode, Role, UserId } from '../bindings';

export type TenantId = string;
export type InvitationId = string;

/** Something a member may do in a tenant (shared's `Action`, snake_case). */
export type Action =
  | 'view_ticket'
  | 'create_ticket'
  | 'create_ticket_for_others'
  | 'edit_ticket'
  | 'delete_ticket'
  | 'transition_ticket'
  | 'comment_public'
  | 'comment_internal'
  | 'view_internal_notes'
  | 'view_activity'
  | 'view_customers'
  | 'edit_customers'
  | 'delete_customer'
  | 'view_members'
  | 'manage_members'
  | 'manage_invitations'
  | 'manage_tenant_settings'
  | 'submit_expense'
  | 'decide_expense';

export type ProviderInfo = { name: string; issuer: string; builtin: boolean };
export type ServerInfo = { url: string; providers: ProviderInfo[] };
export type UserSummary = { id: UserId; email: string | null; name: string | null };
export type Membership = { tenant_id: TenantId; tenant_name: string; role: Role };
export type KeychainState = { kind: 'stored' } | { kind: 'memory_only'; reason: string };
export type Session = {
  server_url: string;
  provider: ProviderInfo;
  user: UserSummary;
  tenants: Membership[];
  tenant_id: TenantId;
  role: Role;
  keychain: KeychainState;
  can_change_password: boolean;
};
export type Account =
  | { state: 'local' }
  | { state: 'signed_out'; server_url: string; providers: ProviderInfo[]; notice: string | null }
  | ({ state: 'signed_in' } & Session);
export type Member = { user_id: UserId; email: string | null; name: string | null; role: Role };
export type Invitation = {
  id: InvitationId;
  email: string;
  role: Role;
  invited_by: UserId;
  created_at: string;
  accepted_at: string | null;
  accept_url: string | null;
};

export type ErrorCode =
  | GeneratedErrorCode
  | 'browser_closed'
  | 'sign_in_cancelled'
  | 'state_mismatch'
  | 'issuer_mismatch'
  | 'clock_skew'
  | 'idp_unreachable'
  | 'consent_denied'
  | 'no_membership'
  | 'session_expired'
  | 'server_unreachable'
  | 'not_a_tallydesk_server'
  | 'not_signed_in';

type DeskError = { code: ErrorCode; message: string; field: string | null };
type Result<T> = Promise<{ status: 'ok'; data: T } | { status: 'error'; error: DeskError }>;

/** The sign-in commands. Results the UI does not read are `unknown`: it reads `account()` after. */
interface AccountCommands {
  account(): Result<Account>;
  connectServer(url: string): Result<ServerInfo>;
  signIn(serverUrl: string, issuer: string): Result<unknown>;
  cancelSignIn(): Result<unknown>;
  signOut(): Result<unknown>;
  disconnectServer(): Result<unknown>;
  switchTenant(tenantId: TenantId): Result<unknown>;
  changePassword(currentPassword: string, newPassword: string): Result<unknown>;
  listMembers(): Result<Member[]>;
  setMemberRole(userId: UserId, role: Role): Result<unknown>;
  removeMember(userId: UserId): Result<unknown>;
  listInvitations(): Result<Invitation[]>;
  inviteMember(email: string, role: Role): Result<Invitation>;
  revokeInvitation(id: InvitationId): Result<unknown>;
}

export const commands = generated as typeof generated & AccountCommands;

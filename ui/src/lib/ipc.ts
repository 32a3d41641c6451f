// The one place that talks to Rust: every command's result is unwrapped here, and every
// failure becomes an `AppError` whose `code` the views branch on.

import { Channel } from '@tauri-apps/api/core';
import { commands } from '../bindings';
import type * as B from '../bindings';

// The bindings describe each type twice: as Rust sends it (`_Serialize`) and as Rust accepts it
// (`_Deserialize`). The UI uses these names: what it receives, and what it sends.
export type Account = B.Account_Serialize;
export type Activity = B.Activity_Serialize;
export type AppInfo = B.AppInfo;
export type Comment = B.Comment;
export type Customer = B.Customer_Serialize;
export type CustomerDetail = B.CustomerDetail_Serialize;
export type DeskError = B.DeskError_Serialize;
export type FreshStart = B.FreshStart_Serialize;
export type Invitation = B.Invitation_Serialize;
export type Member = B.Member_Serialize;
export type Person = B.Person_Serialize;
export type Preferences = B.Preferences_Serialize;
export type Session = B.Session_Serialize;
export type Ticket = B.Ticket_Serialize;
export type TicketDetail = B.TicketDetail_Serialize;
export type TicketPage = B.TicketPage_Serialize;
export type TicketRow = B.TicketRow_Serialize;
export type UserSummary = B.UserSummary_Serialize;
/** The workspace, and what the user may do in it (`can`: Rust's answer, never worked out here). */
export type WorkspaceInfo = B.WorkspaceInfo_Serialize;
export type TicketQuery = B.TicketQuery_Serialize;
export type CreateTicket = B.CreateTicket_Deserialize;
export type PatchTicket = B.PatchTicket_Deserialize;
export type CreateCustomer = B.CreateCustomer_Deserialize;
export type PatchCustomer = B.PatchCustomer_Deserialize;
export type ClaimTarget = B.ClaimTarget_Deserialize;
export type Decision = B.Decision_Serialize;
export type Expense = B.Expense_Serialize;
export type ExpenseInput = B.ExpenseInput_Deserialize;
export type ExpenseItem = B.ExpenseItem_Serialize;
export type ExpenseList = B.ExpenseList_Serialize;
export type ExpenseQuery = B.ExpenseQuery_Serialize;
export type ExpenseReview = B.ExpenseReview_Serialize;
export type ScanEvent = B.ScanEvent_Serialize;
export type TargetState = B.TargetState_Serialize;
export type TicketSla = B.TicketSla_Serialize;
export type Policy = B.Policy_Serialize;
export type PolicyInput = B.PolicyInput_Serialize;
export type CalendarRecord = B.CalendarRecord_Serialize;
export type CalendarInput = B.CalendarInput_Serialize;
export type WeeklyHours = B.WeeklyHours_Serialize;
export type SyncStatus = B.SyncStatus_Serialize;
export type SyncProgress = B.SyncProgress_Serialize;
export type Rejection = B.Rejection_Serialize;
export type Intent = B.Intent_Serialize;
export type {
  Action,
  ActivityAction,
  AssigneeFilter,
  CalendarId,
  ClaimRef,
  CurrencyTotal,
  CustomerId,
  Density,
  ErrorCode,
  ExpenseId,
  ExpenseStatus,
  FieldSource,
  InvitationId,
  KeychainState,
  Membership,
  Mute,
  Priority,
  ProviderInfo,
  ReadLine,
  Reading,
  Role,
  ScanFile,
  ScanStage,
  ServerInfo,
  SlaPolicyId,
  SlaState,
  Status,
  SyncState,
  Target,
  TenantId,
  Theme,
  TicketId,
  TicketSort,
  TicketView,
  UserId,
} from '../bindings';
import type {
  CalendarId,
  CustomerId,
  ErrorCode,
  ExpenseId,
  InvitationId,
  Mute,
  Role,
  SlaPolicyId,
  Status,
  TenantId,
  TicketId,
  UserId,
} from '../bindings';

export class AppError extends Error {
  readonly code: ErrorCode;
  /** The input at fault, when one is (e.g. `title`). */
  readonly field: string | null;

  constructor(error: DeskError) {
    super(error.message);
    this.name = 'AppError';
    this.code = error.code;
    this.field = error.field ?? null;
  }

  /** Anything thrown or rejected, as an `AppError` (a crash in the bridge is `internal`). */
  static from(error: unknown): AppError {
    if (error instanceof AppError) return error;
    if (isDeskError(error)) return new AppError(error);
    const message = error instanceof Error ? error.message : String(error);
    return new AppError({ code: 'internal', message: message || 'something went wrong', field: null });
  }
}

function isDeskError(value: unknown): value is DeskError {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as DeskError).code === 'string' &&
    typeof (value as DeskError).message === 'string'
  );
}

/** Whether `error` is an `AppError` with one of `codes`. */
export function hasCode(error: unknown, ...codes: ErrorCode[]): error is AppError {
  return error instanceof AppError && codes.includes(error.code);
}

type CommandResult<T> = { status: 'ok'; data: T } | { status: 'error'; error: DeskError };

let onSessionLost: (() => void) | null = null;

/** Calls `listener` when a command says the session is over (expired, or signed out elsewhere). */
export function whenSessionLost(listener: (() => void) | null) {
  onSessionLost = listener;
}

async function unwrap<T>(pending: Promise<CommandResult<T>>): Promise<T> {
  let result: CommandResult<T>;
  try {
    result = await pending;
  } catch (error) {
    throw AppError.from(error);
  }
  if (result.status === 'error') {
    const error = AppError.from(result.error);
    if (hasCode(error, 'session_expired', 'not_signed_in')) onSessionLost?.();
    throw error;
  }
  return result.data;
}

/** The commands, returning their data or throwing an `AppError`. */
export const api = {
  openWorkspace: () => unwrap(commands.openWorkspace()),
  startFreshWorkspace: () => unwrap(commands.startFreshWorkspace()),
  workspaceInfo: () => unwrap(commands.workspaceInfo()),
  listTickets: (query: TicketQuery) => unwrap(commands.listTickets(query)),
  getTicket: (id: TicketId) => unwrap(commands.getTicket(id)),
  viewTicket: (id: TicketId) => unwrap(commands.viewTicket(id)),
  createTicket: (input: CreateTicket) => unwrap(commands.createTicket(input)),
  updateTicket: (id: TicketId, patch: PatchTicket) => unwrap(commands.updateTicket(id, patch)),
  transitionTicket: (id: TicketId, to: Status, reason: string | null) =>
    unwrap(commands.transitionTicket(id, to, reason)),
  deleteTicket: (id: TicketId) => unwrap(commands.deleteTicket(id)),
  listComments: (id: TicketId) => unwrap(commands.listComments(id)),
  addComment: (id: TicketId, body: string, internal: boolean) =>
    unwrap(commands.addComment(id, body, internal)),
  ticketActivity: (id: TicketId) => unwrap(commands.ticketActivity(id)),
  listPeople: () => unwrap(commands.listPeople()),
  listCustomers: (search: string | null) => unwrap(commands.listCustomers(search)),
  getCustomer: (id: CustomerId) => unwrap(commands.getCustomer(id)),
  createCustomer: (input: CreateCustomer) => unwrap(commands.createCustomer(input)),
  updateCustomer: (id: CustomerId, patch: PatchCustomer) => unwrap(commands.updateCustomer(id, patch)),
  deleteCustomer: (id: CustomerId) => unwrap(commands.deleteCustomer(id)),
  removeDemoData: () => unwrap(commands.removeDemoData()),
  getPreferences: () => unwrap(commands.getPreferences()),
  setPreferences: (preferences: Preferences) => unwrap(commands.setPreferences(preferences)),
  appInfo: () => unwrap(commands.appInfo()),
  // The bindings type a channel's messages as what Rust accepts, but Rust only sends on it: the
  // messages are `ScanEvent_Serialize`.
  /** Reads receipt files and folders into drafts; `onevent` hears each file's progress. */
  scanReceipts: (paths: string[], onevent: (event: ScanEvent) => void) =>
    unwrap(commands.scanReceipts(paths, new Channel<ScanEvent>(onevent) as unknown as Channel<B.ScanEvent_Deserialize>)),
  /** The system's file chooser; no paths when the person cancels. */
  pickReceipts: (folders: boolean) => commands.pickReceipts(folders).catch((e: unknown) => Promise.reject(AppError.from(e))),
  getExpense: (id: ExpenseId) => unwrap(commands.getExpense(id)),
  saveDraft: (id: ExpenseId, input: ExpenseInput) => unwrap(commands.saveDraft(id, input)),
  submitExpense: (id: ExpenseId, input: ExpenseInput, target: ClaimTarget) =>
    unwrap(commands.submitExpense(id, input, target)),
  decideExpense: (id: ExpenseId, approve: boolean, note: string | null, version: number) =>
    unwrap(commands.decideExpense(id, approve, note, version)),
  discardDraft: (id: ExpenseId) => unwrap(commands.discardDraft(id)),
  listExpenses: (query: ExpenseQuery) => unwrap(commands.listExpenses(query)),
  /** Asks where to save, then writes the CSV; `null` when the person cancels. */
  exportExpensesCsv: (query: ExpenseQuery) => unwrap(commands.exportExpensesCsv(query)),
  openClaims: () => unwrap(commands.openClaims()),
  /** The ticket on screen, which does not notify; `null` when none is. */
  watchTicket: (id: TicketId | null) => commands.watchTicket(id).catch((e: unknown) => Promise.reject(AppError.from(e))),
  /** Do not disturb; resolves to until when alerts are muted (`null`: they are not). */
  alertsMuted: () => commands.alertsMuted().catch((e: unknown) => Promise.reject(AppError.from(e))),
  muteAlerts: (mute: Mute) => commands.muteAlerts(mute).catch((e: unknown) => Promise.reject(AppError.from(e))),
  listSlaPolicies: () => unwrap(commands.listSlaPolicies()),
  /** Creates a policy (`id` null) or changes the one read at `version`. */
  saveSlaPolicy: (id: SlaPolicyId | null, input: PolicyInput, version: number | null) =>
    unwrap(commands.saveSlaPolicy(id, input, version)),
  deleteSlaPolicy: (id: SlaPolicyId) => unwrap(commands.deleteSlaPolicy(id)),
  listCalendars: () => unwrap(commands.listCalendars()),
  /** Creates a calendar (`id` null) or changes the one read at `version`. */
  saveCalendar: (id: CalendarId | null, input: CalendarInput, version: number | null) =>
    unwrap(commands.saveCalendar(id, input, version)),
  deleteCalendar: (id: CalendarId) => unwrap(commands.deleteCalendar(id)),

  /** Local, signed out (with how to sign in) or signed in (with the session). */
  account: () => unwrap(commands.account()),
  /** Reads a server's sign-in configuration (its identity providers). */
  connectServer: (url: string) => unwrap(commands.connectServer(url)),
  /** Opens the browser at the provider and waits for the person to sign in there. */
  signIn: (serverUrl: string, issuer: string) => unwrap(commands.signIn(serverUrl, issuer)).then(() => undefined),
  /** Stops waiting for the browser; the pending `signIn` fails with `sign_in_cancelled`. */
  cancelSignIn: () => unwrap(commands.cancelSignIn()).then(() => undefined),
  signOut: () => unwrap(commands.signOut()).then(() => undefined),
  /** Back to working on this computer only. */
  disconnectServer: () => unwrap(commands.disconnectServer()).then(() => undefined),
  switchTenant: (tenantId: TenantId) => unwrap(commands.switchTenant(tenantId)).then(() => undefined),
  changePassword: (currentPassword: string, newPassword: string) =>
    unwrap(commands.changePassword(currentPassword, newPassword)).then(() => undefined),
  listMembers: () => unwrap(commands.listMembers()),
  setMemberRole: (userId: UserId, role: Role) => unwrap(commands.setMemberRole(userId, role)).then(() => undefined),
  removeMember: (userId: UserId) => unwrap(commands.removeMember(userId)).then(() => undefined),
  listInvitations: () => unwrap(commands.listInvitations()),
  /** The new invitation; only this answer carries its `accept_url` (with the server's own accounts). */
  inviteMember: (email: string, role: Role) => unwrap(commands.inviteMember(email, role)),
  revokeInvitation: (id: InvitationId) => unwrap(commands.revokeInvitation(id)).then(() => undefined),

  /** Online, offline, syncing or signed out, with the unsent and refused changes (the
   *  `sync-status` event carries each change of it). */
  syncStatus: () => unwrap(commands.syncStatus()),
  /** Syncs now, skipping the wait after a failure. */
  retrySync: () => unwrap(commands.retrySync()).then(() => undefined),
  /** The changes the server refused, with its reasons: on one ticket, or all (`null`). */
  syncRejections: (ticketId: TicketId | null) => unwrap(commands.syncRejections(ticketId)),
  /** Forgets a refused change once the person has read it. */
  dismissRejection: (seq: number) => unwrap(commands.dismissRejection(seq)).then(() => undefined),
};

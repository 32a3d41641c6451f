// What a failed sign-in (or a failed connection to a server) says: what happened, Rust's own
// words, and what to do next. The UI branches on the error's code only.

import type { AppError, ErrorCode } from './ipc';
import { sentence } from './format';

export interface Problem {
  title: string;
  /** Rust's message, as a sentence. */
  detail: string;
  /** What the person can do about it. */
  next: string;
}

/** The address a `no_membership` error names: in `field` if Rust puts it there, else the one
 *  its message says the person signed in as. Only shown, never branched on. */
function email(error: AppError): string | null {
  if (error.field?.includes('@')) return error.field;
  return /[^\s@()"]+@[^\s@()"]+\.[^\s@()",;]*[^\s@()",;.]/.exec(error.message)?.[0] ?? null;
}

const NEXT: Partial<Record<ErrorCode, { title: string; next: (error: AppError) => string }>> = {
  browser_closed: {
    title: 'Sign-in did not finish in the browser',
    next: () => 'The browser tab was closed before you signed in. Sign in again, and finish signing in on the page that opens.',
  },
  sign_in_cancelled: {
    title: 'Sign-in cancelled',
    next: () => 'Nothing was changed. Choose a way to sign in when you are ready.',
  },
  state_mismatch: {
    title: 'The answer from the sign-in page did not match this sign-in',
    next: () =>
      'For your safety it was refused. Sign in again, and finish in the browser tab Tallydesk opens rather than an older one.',
  },
  issuer_mismatch: {
    title: 'The answer came from a different identity provider',
    next: () =>
      'For your safety it was refused. Sign in again; if it happens again, ask your administrator to check the server’s identity provider settings.',
  },
  clock_skew: {
    title: 'Your computer’s clock is wrong',
    next: () => 'Set the date and time to update automatically in your system settings, then sign in again.',
  },
  idp_unreachable: {
    title: 'The identity provider could not be reached',
    next: () =>
      'Check your internet connection (and VPN, if your organisation uses one), then try again. If it keeps failing, ask your administrator whether the provider is down.',
  },
  consent_denied: {
    title: 'Tallydesk was not given access',
    next: () => 'Sign in again and allow Tallydesk when your identity provider asks for your consent.',
  },
  no_membership: {
    title: 'You are not a member of any organisation on this server',
    next: (error) => {
      const address = email(error);
      return address
        ? `Ask an admin of your organisation to invite ${address}, then sign in again.`
        : 'Ask an admin of your organisation to invite the email address you signed in with, then sign in again.';
    },
  },
  session_expired: {
    title: 'Your session has ended',
    next: () => 'Sign in again to carry on. Your work on this computer is kept.',
  },
  not_signed_in: {
    title: 'You are not signed in',
    next: () => 'Sign in to carry on.',
  },
  forbidden: {
    title: 'Your role does not allow this',
    next: () => 'Ask an admin of your organisation if you need it.',
  },
  server_unreachable: {
    title: 'The server could not be reached',
    next: () => 'Check the address and your internet connection (and VPN), then try again.',
  },
  not_a_tallydesk_server: {
    title: 'That address is not a Tallydesk server',
    next: () => 'Check the address with your administrator. It is the address of your Tallydesk server, such as https://tallydesk.example.com.',
  },
  invalid_field: {
    title: 'That is not a server address',
    next: () => 'Type the address of your Tallydesk server, starting with https://.',
  },
};

export function signInProblem(error: AppError): Problem {
  const known = NEXT[error.code];
  return {
    title: known?.title ?? 'Signing in failed',
    detail: sentence(error.message),
    next: known ? known.next(error) : 'Try again. If it keeps failing, ask your administrator.',
  };
}

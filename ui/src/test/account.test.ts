// Signing in to a server from the desktop: the sign-in screen, the browser step and its failures,
// the account panel in Settings, the account menu and the tenant switcher.

import { screen, waitFor, within } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { ErrorCode } from '../lib/ipc';
import { BUILTIN, KEYCLOAK, SERVER_URL, type FakeDesk } from './fake-desk';
import { goTo, installDesk, renderApp, renderSignIn } from './harness';

vi.mock('../bindings', () => import('./fake-bindings'));

let desk: FakeDesk;

beforeEach(() => {
  desk = installDesk({ tickets: 12 });
});

/** Clicks a provider's button and waits until the app says to carry on in the browser. */
async function startSignIn(name: string) {
  await userEvent.click(screen.getByRole('button', { name }));
  await screen.findByText('Continue in your browser…');
  await waitFor(() => expect(desk.signIns, 'Rust was asked to sign in').toHaveLength(1));
  return desk.signIns[0];
}

describe('the sign-in screen', () => {
  beforeEach(() => desk.signOutWith(null));

  it('covers the window with one button per provider, the server, and the way out', async () => {
    await renderSignIn();
    expect(screen.getByText(SERVER_URL)).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Sign in with Tallydesk account' })).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Sign in with Acme SSO' })).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Use another server…' })).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Work offline without a server' })).toBeInTheDocument();
    expect(screen.queryByRole('navigation', { name: 'Views' }), 'no workspace while signed out').toBeNull();
  });

  it('says why the app signed itself out', async () => {
    desk.signOutWith('your session ended on the server; sign in again');
    await renderSignIn();
    expect(screen.getByRole('status')).toHaveTextContent('Your session ended on the server; sign in again.');
  });

  it.each([
    ['Sign in with Tallydesk account', BUILTIN.issuer],
    ['Sign in with Acme SSO', KEYCLOAK.issuer],
  ])('%s waits for the browser, then opens the workspace', async (button, issuer) => {
    const signIn = vi.spyOn(desk.commands, 'signIn');
    await renderSignIn();
    const pending = await startSignIn(button);
    expect(signIn).toHaveBeenCalledWith(SERVER_URL, issuer);
    expect(screen.getByRole('button', { name: 'Cancel sign-in' }), 'the wait can be cancelled from the keyboard').toHaveFocus();

    pending.succeed();
    await screen.findByRole('navigation', { name: 'Views' });
    expect(screen.getByRole('button', { name: 'Account menu' }), 'the signed-in user has an account menu').toBeInTheDocument();
  });

  it('cancels the wait for the browser', async () => {
    const cancel = vi.spyOn(desk.commands, 'cancelSignIn');
    await renderSignIn();
    await startSignIn('Sign in with Tallydesk account');
    await userEvent.click(screen.getByRole('button', { name: 'Cancel sign-in' }));

    expect(cancel).toHaveBeenCalledOnce();
    await screen.findByText('Sign-in cancelled. Choose a way to sign in when you are ready.');
    expect(screen.queryByText('Continue in your browser…')).toBeNull();
    expect(screen.queryByRole('alert'), 'cancelling is not an error').toBeNull();
    expect(screen.getByRole('button', { name: 'Sign in with Tallydesk account' }), 'focus goes back to the button').toHaveFocus();
  });

  const FAILURES: [ErrorCode, string, string][] = [
    ['browser_closed', 'Sign-in did not finish in the browser', 'Sign in again, and finish signing in on the page that opens.'],
    ['state_mismatch', 'The answer from the sign-in page did not match this sign-in', 'finish in the browser tab Tallydesk opens'],
    ['issuer_mismatch', 'The answer came from a different identity provider', 'ask your administrator to check the server’s identity provider settings'],
    ['clock_skew', 'Your computer’s clock is wrong', 'Set the date and time to update automatically'],
    ['idp_unreachable', 'The identity provider could not be reached', 'Check your internet connection'],
    ['consent_denied', 'Tallydesk was not given access', 'allow Tallydesk when your identity provider asks'],
    ['no_membership', 'You are not a member of any organisation on this server', 'Ask an admin of your organisation to invite'],
    ['session_expired', 'Your session has ended', 'Sign in again to carry on.'],
    ['forbidden', 'Your role does not allow this', 'Ask an admin of your organisation'],
    ['server_unreachable', 'The server could not be reached', 'Check the address and your internet connection'],
    ['not_a_tallydesk_server', 'That address is not a Tallydesk server', 'Check the address with your administrator'],
    ['not_signed_in', 'You are not signed in', 'Sign in to carry on.'],
    ['internal', 'Signing in failed', 'If it keeps failing, ask your administrator.'],
  ];

  it.each(FAILURES)('explains %s and says what to do next', async (code, title, next) => {
    await renderSignIn();
    const pending = await startSignIn('Sign in with Acme SSO');
    pending.fail(code, 'rust says what went wrong');

    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent(title);
    expect(alert, 'Rust’s own message is shown').toHaveTextContent('Rust says what went wrong.');
    expect(alert).toHaveTextContent(next);
    expect(screen.getByRole('button', { name: 'Sign in with Acme SSO' }), 'the person can try again at once').toBeEnabled();
  });

  it('names the address to invite when the account is a member of no tenant', async () => {
    await renderSignIn();
    const pending = await startSignIn('Sign in with Tallydesk account');
    pending.fail('no_membership', 'you are not a member of any team on this server yet', 'jo@example.com');
    expect(await screen.findByRole('alert')).toHaveTextContent('Ask an admin of your organisation to invite jo@example.com, then sign in again.');
  });

  it('finds the address to invite in Rust’s message when no field names it', async () => {
    await renderSignIn();
    const pending = await startSignIn('Sign in with Acme SSO');
    pending.fail('no_membership', 'You are signed in as kim.lee@acme.example, but you are not a member of any team on this server yet.');
    expect(await screen.findByRole('alert')).toHaveTextContent('Ask an admin of your organisation to invite kim.lee@acme.example, then sign in again.');
  });

  it('signs in to another server', async () => {
    desk.servers.set('https://help.globex.example', [{ name: 'Globex login', issuer: 'https://login.globex.example', builtin: false }]);
    const signIn = vi.spyOn(desk.commands, 'signIn');
    await renderSignIn();
    await userEvent.click(screen.getByRole('button', { name: 'Use another server…' }));
    const url = screen.getByRole('textbox', { name: 'Server URL' });
    await userEvent.clear(url);
    await userEvent.type(url, 'https://nowhere.example');
    await userEvent.click(screen.getByRole('button', { name: 'Connect' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('That address is not a Tallydesk server.');

    await userEvent.clear(url);
    await userEvent.type(url, 'https://help.globex.example');
    await userEvent.click(screen.getByRole('button', { name: 'Connect' }));
    await userEvent.click(await screen.findByRole('button', { name: 'Sign in with Globex login' }));
    expect(signIn).toHaveBeenCalledWith('https://help.globex.example', 'https://login.globex.example');
  });

  it('works offline without a server', async () => {
    const disconnect = vi.spyOn(desk.commands, 'disconnectServer');
    await renderSignIn();
    await userEvent.click(screen.getByRole('button', { name: 'Work offline without a server' }));
    await screen.findByRole('navigation', { name: 'Views' });
    expect(disconnect).toHaveBeenCalledOnce();
    expect(screen.queryByRole('button', { name: 'Account menu' }), 'a local workspace has no account').toBeNull();
  });

  it('comes back when a command finds the session over', async () => {
    desk.signInAs('agent');
    await renderApp();
    vi.spyOn(desk.commands, 'viewTicket').mockImplementation(() => {
      desk.signOutWith('your sign-in could not be renewed; sign in again');
      return Promise.resolve({ status: 'error', error: { code: 'session_expired', message: 'the session expired', field: null } });
    });
    goTo({ name: 'ticket', id: desk.tickets[0].id });
    await screen.findByRole('heading', { level: 1, name: 'Sign in to Tallydesk' });
    expect(screen.getByRole('status')).toHaveTextContent('Your sign-in could not be renewed; sign in again.');
  });
});

describe('the account panel in Settings', () => {
  it('connects a local workspace to a server, then signs in on the sign-in screen', async () => {
    const connect = vi.spyOn(desk.commands, 'connectServer');
    goTo({ name: 'settings' });
    await renderApp();
    const panel = screen.getByRole('region', { name: 'Account' });
    expect(within(panel).getByText(/You work on this computer only/)).toBeInTheDocument();

    await userEvent.type(within(panel).getByRole('textbox', { name: 'Server URL' }), SERVER_URL);
    await userEvent.click(within(panel).getByRole('button', { name: 'Connect' }));
    expect(connect).toHaveBeenCalledWith(SERVER_URL);

    await screen.findByRole('heading', { level: 1, name: 'Sign in to Tallydesk' });
    expect(screen.getByText(SERVER_URL)).toBeInTheDocument();
    await startSignIn('Sign in with Tallydesk account');
    desk.signIns[0].succeed();

    const signedIn = await screen.findByRole('region', { name: 'Account' });
    await within(signedIn).findByText('Signed in as');
    expect(signedIn).toHaveTextContent('Alex Morgan');
    expect(signedIn).toHaveTextContent('alex@example.com');
    expect(signedIn).toHaveTextContent(SERVER_URL);
    expect(signedIn).toHaveTextContent('Tallydesk account');
    expect(signedIn).toHaveTextContent('Acme Support');
    expect(signedIn).toHaveTextContent('Admin');
    expect(within(signedIn).queryByRole('note'), 'the keychain held the sign-in: no warning').toBeNull();
  });

  it('warns when the sign-in is kept in memory only, with the reason', async () => {
    desk.signInAs('agent', { keychain: { kind: 'memory_only', reason: 'no Secret Service is running' } });
    goTo({ name: 'settings' });
    await renderApp();
    const note = screen.getByRole('note', { name: 'Sign-in not remembered' });
    expect(note).toHaveTextContent('no Secret Service is running');
    expect(note).toHaveTextContent('you will sign in again next time you start it');
  });

  it('changes the password, with Rust’s field errors and a check that both new ones match', async () => {
    const change = vi.spyOn(desk.commands, 'changePassword');
    desk.signInAs('agent');
    goTo({ name: 'settings' });
    await renderApp();
    await userEvent.click(screen.getByRole('button', { name: 'Change password…' }));
    const dialog = screen.getByRole('dialog', { name: 'Change password' });
    const current = within(dialog).getByLabelText('Current password');
    const next = within(dialog).getByLabelText('New password');
    const confirm = within(dialog).getByLabelText('Confirm new password');

    await userEvent.type(current, 'wrong');
    await userEvent.type(next, 'a long new passphrase');
    await userEvent.type(confirm, 'a long new passphrase!');
    await userEvent.click(within(dialog).getByRole('button', { name: 'Change password' }));
    expect(within(dialog).getByRole('alert')).toHaveTextContent('The two new passwords are not the same.');
    expect(change, 'nothing is sent while the two differ').not.toHaveBeenCalled();

    await userEvent.clear(confirm);
    await userEvent.type(confirm, 'a long new passphrase');
    await userEvent.click(within(dialog).getByRole('button', { name: 'Change password' }));
    expect(await within(dialog).findByRole('alert')).toHaveTextContent('The current password is not right.');
    expect(current).toHaveAttribute('aria-invalid', 'true');

    await userEvent.clear(current);
    await userEvent.type(current, desk.auth.password);
    await userEvent.click(within(dialog).getByRole('button', { name: 'Change password' }));
    await waitFor(() => expect(screen.queryByRole('dialog', { name: 'Change password' })).toBeNull());
    expect(change).toHaveBeenLastCalledWith('correct horse battery', 'a long new passphrase');
    expect(await screen.findByText('Password changed')).toBeInTheDocument();
  });

  it('offers no password change for an account another provider holds', async () => {
    desk.signInAs('agent', { provider: KEYCLOAK });
    goTo({ name: 'settings' });
    await renderApp();
    expect(screen.getByRole('region', { name: 'Account' })).toHaveTextContent('Acme SSO');
    expect(screen.queryByRole('button', { name: 'Change password…' })).toBeNull();
  });

  it('signs out to the sign-in screen', async () => {
    desk.signInAs('agent');
    goTo({ name: 'settings' });
    await renderApp();
    await userEvent.click(screen.getByRole('button', { name: 'Sign out' }));
    await screen.findByRole('heading', { level: 1, name: 'Sign in to Tallydesk' });
    expect(screen.getByRole('button', { name: 'Sign in with Tallydesk account' })).toBeInTheDocument();
  });

  it('disconnects after confirming, back to a local workspace', async () => {
    desk.signInAs('agent');
    goTo({ name: 'settings' });
    await renderApp();
    await userEvent.click(screen.getByRole('button', { name: 'Disconnect' }));
    const dialog = screen.getByRole('dialog', { name: 'Disconnect from the server?' });
    await userEvent.click(within(dialog).getByRole('button', { name: 'Disconnect' }));
    await waitFor(() => expect(desk.auth.account.state).toBe('local'));
    await screen.findByRole('button', { name: 'New ticket' });
    expect(screen.queryByRole('button', { name: 'Account menu' })).toBeNull();
  });
});

describe('the account menu', () => {
  it('shows who is signed in, as what, and signs out', async () => {
    desk.signInAs('agent');
    await renderApp();
    const button = screen.getByRole('button', { name: 'Account menu' });
    expect(button).toHaveAttribute('aria-expanded', 'false');
    button.focus();
    await userEvent.keyboard('{ArrowDown}');

    const menu = screen.getByRole('menu', { name: 'Account' });
    expect(menu).toHaveTextContent('Alex Morgan');
    expect(menu).toHaveTextContent('alex@example.com');
    expect(menu).toHaveTextContent('Agent · Acme Support');
    expect(within(menu).getByRole('menuitem', { name: 'Account settings' }), 'arrows open the menu on its first item').toHaveFocus();
    await userEvent.keyboard('{ArrowDown}');
    expect(within(menu).getByRole('menuitem', { name: 'Sign out' })).toHaveFocus();
    await userEvent.keyboard('{Escape}');
    expect(screen.queryByRole('menu')).toBeNull();
    expect(button, 'Escape gives focus back to the button').toHaveFocus();

    await userEvent.click(button);
    await userEvent.click(screen.getByRole('menuitem', { name: 'Sign out' }));
    await screen.findByRole('heading', { level: 1, name: 'Sign in to Tallydesk' });
  });
});

describe('the tenant switcher', () => {
  it('is shown only to someone in several tenants', async () => {
    desk.signInAs('agent');
    await renderApp();
    expect(screen.queryByRole('combobox', { name: 'Tenant' })).toBeNull();
  });

  it('switches tenant, then shows what the role there allows', async () => {
    desk.signInAs(null);
    await renderApp();
    expect(screen.getByRole('button', { name: 'New ticket' }), 'an admin in Acme Support').toBeInTheDocument();
    const tenant = screen.getByRole('combobox', { name: 'Tenant' });
    expect(tenant).toHaveDisplayValue('Acme Support · Admin');

    await userEvent.selectOptions(tenant, 'Globex IT · Observer');
    expect(desk.switched).toEqual([desk.memberships[1].tenant_id]);
    await waitFor(() => expect(screen.queryByRole('button', { name: 'New ticket' }), 'an observer creates nothing').toBeNull());
    expect(screen.getByRole('combobox', { name: 'Tenant' })).toHaveDisplayValue('Globex IT · Observer');
    expect(await screen.findByText('Now working in Globex IT as observer')).toBeInTheDocument();
  });
});

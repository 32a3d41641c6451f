#!/usr/bin/env node
// A stand-in for the system browser in the end-to-end tests: the app runs it with one argument,
// the URL it would open (TALLYDESK_BROWSER). It does what a person would do there: follow the
// redirects, fill in the login form with the credentials the test left in
// $TALLYDESK_E2E_WORK/login.json ({email, password, cancel?}), submit it, and follow the
// redirects back to the app's loopback listener. Sign-out pages are just followed.
//
// The tests import `browse` too, to sign in people other than the app's user.

import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

/** Follows `url` like a browser with one cookie jar, submitting login forms with `login`. Stops
 * before a redirect to an address for which `stopAt` is true, and returns that address. */
export async function browse(url, login, { maxSteps = 20, stopAt = () => false } = {}) {
  const cookies = new Map();
  let request = { url, method: 'GET', body: undefined };
  for (let step = 0; step < maxSteps; step++) {
    const response = await fetch(request.url, {
      method: request.method,
      redirect: 'manual',
      headers: {
        cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; '),
        ...(request.body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      body: request.body,
      signal: AbortSignal.timeout(30000),
    });
    for (const line of response.headers.getSetCookie?.() ?? []) {
      const [pair] = line.split(';');
      const at = pair.indexOf('=');
      cookies.set(pair.slice(0, at).trim(), pair.slice(at + 1).trim());
    }
    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location) {
      const next = new URL(location, request.url).href;
      if (stopAt(next)) return { url: next, status: response.status, html: '' };
      request = { url: next, method: 'GET', body: undefined };
      continue;
    }
    const html = await response.text();
    const form = loginForm(html);
    if (!form) return { url: request.url, status: response.status, html };
    if (!login) throw new Error(`a login form at ${request.url}, but no credentials to fill in`);
    const fields = new URLSearchParams();
    for (const [name, value] of form.hidden) fields.set(name, value);
    fields.set(form.email, login.email);
    fields.set(form.password, login.password);
    if (login.cancel && form.cancel) fields.set(form.cancel.name, form.cancel.value);
    else if (form.submit) fields.set(form.submit.name, form.submit.value);
    request = { url: new URL(form.action || request.url, request.url).href, method: 'POST', body: fields.toString() };
  }
  throw new Error(`more than ${maxSteps} steps from ${url}`);
}

function attributes(tag) {
  const found = {};
  for (const m of tag.matchAll(/([a-zA-Z_:-]+)\s*=\s*("([^"]*)"|'([^']*)')/g)) found[m[1].toLowerCase()] = decode(m[3] ?? m[4]);
  return found;
}

function decode(text) {
  return text
    .replaceAll('&quot;', '"')
    .replaceAll('&#39;', "'")
    .replaceAll('&#x27;', "'")
    .replaceAll('&lt;', '<')
    .replaceAll('&gt;', '>')
    .replaceAll('&amp;', '&');
}

/** The first form with a password field: its action, hidden fields, and the fields to fill. */
function loginForm(html) {
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const inputs = [...m[2].matchAll(/<(input|button)\b[^>]*>/gi)].map((i) => ({ tag: i[1].toLowerCase(), ...attributes(i[0]) }));
    const password = inputs.find((i) => i.type === 'password');
    if (!password) continue;
    const email = inputs.find((i) => i.type === 'email' || /email|login|user/i.test(i.name ?? ''));
    const buttons = inputs.filter((i) => (i.type ?? 'submit') === 'submit' && i.name);
    return {
      action: attributes(`<form ${m[1]}>`).action,
      hidden: inputs.filter((i) => i.type === 'hidden' && i.name).map((i) => [i.name, i.value ?? '']),
      email: email?.name,
      password: password.name,
      submit: buttons.find((b) => !/cancel|deny|abort/i.test(`${b.name} ${b.value}`)),
      cancel: buttons.find((b) => /cancel|deny|abort/i.test(`${b.name} ${b.value}`)),
    };
  }
  return null;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const url = process.argv[2];
  const work = process.env.TALLYDESK_E2E_WORK;
  let login = null;
  try {
    login = JSON.parse(readFileSync(`${work}/login.json`, 'utf8'));
  } catch {
    // Sign-out pages need no credentials.
  }
  // Detached from the app: it waits for the redirect, not for this program.
  browse(url, login).then(
    () => process.exit(0),
    (error) => {
      console.error(`browser.mjs: ${error.message}`);
      process.exit(1);
    },
  );
}

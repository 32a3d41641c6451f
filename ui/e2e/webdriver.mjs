// A small W3C WebDriver client for driving the real app through tauri-driver.
// Elements are found by role and accessible name, the way a person (or a screen reader) finds them.

const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf';

export class WebDriver {
  constructor(url) {
    this.url = url;
    this.session = null;
  }

  async request(method, path, body) {
    const started = Date.now();
    const response = await fetch(`${this.url}${path}`, {
      signal: AbortSignal.timeout(60000),
      method,
      headers: body ? { 'content-type': 'application/json' } : undefined,
      body: body ? JSON.stringify(body) : undefined,
    });
    const json = await response.json().catch(() => ({}));
    if (process.env.TALLYDESK_E2E_TRACE) console.error(`${method} ${path.replace(/\/session\/[^/]+/, '')} ${Date.now() - started} ms`);
    if (!response.ok) {
      const error = json.value?.error ?? response.status;
      throw new Error(`WebDriver ${method} ${path}: ${error}: ${json.value?.message ?? ''}`);
    }
    return json.value;
  }

  s(path) {
    return `/session/${this.session}${path}`;
  }

  async start(application, extra = {}) {
    const value = await this.request('POST', '/session', {
      capabilities: { alwaysMatch: { 'tauri:options': { application, ...extra } } },
    });
    this.session = value.sessionId;
  }

  async stop() {
    if (this.session) {
      const id = this.session;
      this.session = null;
      await this.request('DELETE', `/session/${id}`).catch(() => {});
    }
  }

  async execute(script, args = []) {
    return this.request('POST', this.s('/execute/sync'), { script, args });
  }

  /** Runs `script` in the page; it gets a callback as its last argument and calls it with the result. */
  async executeAsync(script, args = []) {
    return this.request('POST', this.s('/execute/async'), { script, args });
  }

  async title() {
    return this.request('GET', this.s('/title'));
  }

  /** The window as it looks now. WebKitWebDriver takes it after the page's next paint, and a page
   * where nothing changes does not paint: the request would hang. So a pixel nobody sees keeps
   * changing for a moment first. */
  async screenshot() {
    await this.execute(REPAINT);
    return Buffer.from(await this.request('GET', this.s('/screenshot')), 'base64');
  }

  /** Waits until `probe` returns a truthy value, or fails with `what`. */
  async until(what, probe, timeoutMs = 10000) {
    const deadline = Date.now() + timeoutMs;
    let last;
    while (Date.now() < deadline) {
      try {
        const value = await probe();
        if (value) return value;
      } catch (e) {
        last = e;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
  }

  /** All elements with `role` whose accessible name matches `name` (a string or RegExp). While a
   * modal dialog is open, only what is inside it counts, as for a person using the app. */
  async findAll(role, name) {
    const pattern = name instanceof RegExp ? { source: name.source, flags: name.flags } : { exact: name ?? null };
    const found = await this.execute(FIND_BY_ROLE, [role, pattern]);
    return found.map((el) => new Element(this, el[ELEMENT]));
  }

  /** The one visible element with this role and name, waiting for it to appear. */
  async find(role, name, timeoutMs) {
    return this.until(`${role} "${name}"`, async () => (await this.findAll(role, name))[0], timeoutMs);
  }

  async gone(role, name, timeoutMs) {
    return this.until(`${role} "${name}" to go`, async () => (await this.findAll(role, name)).length === 0, timeoutMs);
  }

  /** Presses keys on the keyboard, wherever the focus is. */
  async press(text) {
    const actions = [...text].flatMap((value) => [{ type: 'keyDown', value }, { type: 'keyUp', value }]);
    await this.request('POST', this.s('/actions'), { actions: [{ type: 'key', id: 'keyboard', actions }] });
  }

  async bodyText() {
    return this.execute('return document.body.innerText');
  }
}

export class Element {
  constructor(driver, id) {
    this.driver = driver;
    this.id = id;
  }

  path(p) {
    return this.driver.s(`/element/${this.id}${p}`);
  }

  async click() {
    await this.driver.request('POST', this.path('/click'), {});
  }

  async type(text) {
    await this.driver.request('POST', this.path('/value'), { text });
  }

  async clear() {
    await this.driver.request('POST', this.path('/clear'), {});
  }

  async text() {
    return this.driver.request('GET', this.path('/text'));
  }

  async value() {
    return this.driver.execute('return arguments[0].value', [{ [ELEMENT]: this.id }]);
  }

  /** Picks the option of this <select> whose text matches `label`, as a person choosing it does. */
  async choose(label) {
    const pattern = label instanceof RegExp ? { source: label.source, flags: label.flags } : { exact: label };
    const chosen = await this.driver.execute(
      `const select = arguments[0], p = arguments[1];
       const matches = (t) => (p.exact !== undefined ? t.trim() === p.exact : new RegExp(p.source, p.flags).test(t.trim()));
       const option = Array.from(select.options).find((o) => matches(o.textContent));
       if (!option) return null;
       select.focus();
       select.value = option.value;
       select.dispatchEvent(new Event('input', { bubbles: true }));
       select.dispatchEvent(new Event('change', { bubbles: true }));
       return option.textContent.trim();`,
      [{ [ELEMENT]: this.id }, pattern],
    );
    if (!chosen) throw new Error(`no option matching ${label}`);
    return chosen;
  }

  async selected() {
    return this.driver.request('GET', this.path('/selected'));
  }
}

// Runs in the page: changes an invisible pixel every frame for two seconds.
const REPAINT = `
let el = document.getElementById('e2e-repaint');
if (!el) {
  el = document.createElement('div');
  el.id = 'e2e-repaint';
  el.setAttribute('aria-hidden', 'true');
  el.style.cssText = 'position:fixed;left:0;top:0;width:1px;height:1px;pointer-events:none;z-index:2147483647';
  document.body.appendChild(el);
}
let on = false;
clearInterval(window.__e2eRepaint);
const until = Date.now() + 2000;
window.__e2eRepaint = setInterval(() => {
  on = !on;
  el.style.background = on ? 'rgba(0, 0, 0, 0.01)' : 'rgba(0, 0, 0, 0.02)';
  if (Date.now() > until) { clearInterval(window.__e2eRepaint); el.remove(); }
}, 16);
`;

// Runs in the page: roles from ARIA or the element's native semantics, names from
// aria-labelledby, aria-label, <label>, or text content.
const FIND_BY_ROLE = `
const [role, pattern] = arguments;
const implicit = (el) => {
  const tag = el.tagName.toLowerCase();
  const type = (el.getAttribute('type') || '').toLowerCase();
  if (tag === 'button' || (tag === 'input' && ['button', 'submit', 'reset'].includes(type))) return 'button';
  if (tag === 'a' && el.hasAttribute('href')) return 'link';
  if (tag === 'input' && type === 'checkbox') return 'checkbox';
  if (tag === 'input' && type === 'radio') return 'radio';
  if (tag === 'input' && type === 'search') return 'searchbox';
  if (tag === 'input' && type === 'number') return 'spinbutton';
  if (tag === 'input' && ['', 'text', 'email', 'url', 'tel', 'password'].includes(type)) return 'textbox';
  if (tag === 'textarea') return 'textbox';
  if (tag === 'select') return el.multiple ? 'listbox' : 'combobox';
  if (tag === 'dialog') return 'dialog';
  if (tag === 'nav') return 'navigation';
  if (tag === 'main') return 'main';
  if (tag === 'section' && (el.hasAttribute('aria-label') || el.hasAttribute('aria-labelledby'))) return 'region';
  if (/^h[1-6]$/.test(tag)) return 'heading';
  if (tag === 'tr') return 'row';
  if (tag === 'article') return 'article';
  if (tag === 'table') return 'table';
  if (tag === 'li') return 'listitem';
  if (tag === 'ul' || tag === 'ol') return 'list';
  return null;
};
const text = (el) => (el.innerText || el.textContent || '').replace(/\\s+/g, ' ').trim();
const name = (el) => {
  const by = el.getAttribute('aria-labelledby');
  if (by) return by.split(/\\s+/).map((id) => document.getElementById(id)).filter(Boolean).map(text).join(' ');
  const label = el.getAttribute('aria-label');
  if (label) return label.trim();
  // A label's words as written: innerText would apply CSS text-transform (an uppercase caption).
  if (el.labels && el.labels.length) return Array.from(el.labels).map((l) => l.textContent.replace(/\\s+/g, ' ').trim()).join(' ');
  if (el.tagName === 'INPUT' && el.placeholder) return el.placeholder.trim();
  // As in the accessible-name computation: the element's own words first, its title only failing those.
  const own = el.tagName === 'INPUT' || el.tagName === 'SELECT' || el.tagName === 'TEXTAREA' ? '' : text(el);
  if (own) return own;
  if (el.getAttribute('title')) return el.getAttribute('title').trim();
  return own;
};
const visible = (el) => {
  const r = el.getBoundingClientRect();
  const s = getComputedStyle(el);
  return (r.width > 0 || r.height > 0) && s.visibility !== 'hidden' && s.display !== 'none';
};
const matches = (n) => pattern.exact === null ? true
  : pattern.exact !== undefined ? n === pattern.exact
  : new RegExp(pattern.source, pattern.flags).test(n);
const modal = Array.from(document.querySelectorAll('dialog[open], [role=dialog][aria-modal=true]')).filter(visible).pop();
const scope = role === 'dialog' || !modal ? document : modal;
return Array.from(scope.querySelectorAll('*')).filter((el) =>
  (el.getAttribute('role') || implicit(el)) === role && visible(el) && matches(name(el)));
`;

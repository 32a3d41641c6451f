// The query layer: views read state that mirrors Rust through keyed entries here, and mutations
// invalidate keys instead of patching copies. An entry is shared by every view that uses its key,
// refetched when invalidated while in use, and marked stale (refetched on next use) otherwise.

import { untrack } from 'svelte';
import { AppError } from './ipc';

export type QueryKey = readonly (string | number | boolean | null | object)[];

interface Resource {
  readonly key: QueryKey;
  users: number;
  stale: boolean;
  refresh(): Promise<void>;
}

const entries = new Map<string, Resource>();

const hash = (key: QueryKey) => JSON.stringify(key);

function matches(key: QueryKey, prefix: QueryKey): boolean {
  return prefix.every((part, i) => hash([part]) === hash([key[i]]));
}

/** One value fetched from Rust. */
export class QueryEntry<T> implements Resource {
  data = $state.raw<T | undefined>(undefined);
  error = $state.raw<AppError | null>(null);
  loading = $state(false);
  users = 0;
  stale = true;
  #generation = 0;

  constructor(
    readonly key: QueryKey,
    private fetcher: () => Promise<T>,
  ) {}

  /** The fetch on its way, if any. */
  pending: Promise<void> | null = null;

  refresh(): Promise<void> {
    const generation = ++this.#generation;
    this.stale = false;
    this.loading = true;
    const pending = this.fetcher().then(
      (data) => {
        if (generation !== this.#generation) return;
        this.data = data;
        this.error = null;
        this.loading = false;
      },
      (error) => {
        if (generation !== this.#generation) return;
        this.error = AppError.from(error);
        this.loading = false;
      },
    );
    this.pending = pending;
    void pending.then(() => {
      if (this.pending === pending) this.pending = null;
    });
    return pending;
  }

  set(data: T) {
    this.#generation++;
    this.data = data;
    this.error = null;
    this.loading = false;
    this.stale = false;
  }
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
  total: number;
}

const PAGE = 100;
const REFRESH_PAGE = 500;

/** A list read page by page with keyset cursors (the ticket queue). */
export class PagedEntry<T> implements Resource {
  items = $state.raw<T[]>([]);
  total = $state(0);
  nextCursor = $state<string | null>(null);
  /** Nothing loaded yet. */
  loading = $state(false);
  /** A reload is on its way (the rows shown may be about to change). */
  refreshing = $state(false);
  loadingMore = $state(false);
  loaded = $state(false);
  error = $state.raw<AppError | null>(null);
  users = 0;
  stale = true;
  #generation = 0;

  constructor(
    readonly key: QueryKey,
    private fetchPage: (cursor: string | null, limit: number) => Promise<Page<T>>,
  ) {}

  get hasMore() {
    return this.nextCursor !== null;
  }

  /** Reloads from the start, as far as was loaded before, so the scroll position survives. */
  async refresh(): Promise<void> {
    const generation = ++this.#generation;
    const want = Math.max(this.items.length, PAGE);
    this.stale = false;
    this.loading = !this.loaded;
    this.refreshing = true;
    this.loadingMore = false;
    try {
      let items: T[] = [];
      let cursor: string | null = null;
      let total = 0;
      do {
        const limit = Math.min(REFRESH_PAGE, Math.max(PAGE, want - items.length));
        const page: Page<T> = await this.fetchPage(cursor, limit);
        if (generation !== this.#generation) return;
        items = items.concat(page.items);
        cursor = page.next_cursor;
        total = page.total;
      } while (cursor !== null && items.length < want);
      this.items = items;
      this.nextCursor = cursor;
      this.total = total;
      this.error = null;
      this.loaded = true;
    } catch (error) {
      if (generation !== this.#generation) return;
      this.error = AppError.from(error);
    } finally {
      if (generation === this.#generation) {
        this.loading = false;
        this.refreshing = false;
      }
    }
  }

  /** Appends the next page, if there is one and none is on its way. */
  async loadMore(): Promise<void> {
    if (!this.loaded || this.nextCursor === null || this.loadingMore || this.loading) return;
    const generation = this.#generation;
    this.loadingMore = true;
    try {
      const page = await this.fetchPage(this.nextCursor, PAGE);
      if (generation !== this.#generation) return;
      this.items = this.items.concat(page.items);
      this.nextCursor = page.next_cursor;
      this.total = page.total;
    } catch (error) {
      if (generation !== this.#generation) return;
      this.error = AppError.from(error);
    } finally {
      if (generation === this.#generation) this.loadingMore = false;
    }
  }
}

/** Past this many entries, unused lists are dropped (each search typed makes one). */
const MAX_ENTRIES = 100;

function entry<R extends Resource>(key: QueryKey, create: () => R): R {
  const id = hash(key);
  let found = entries.get(id);
  if (!found) {
    if (entries.size >= MAX_ENTRIES) {
      for (const [k, e] of entries) if (e.users === 0 && e instanceof PagedEntry) entries.delete(k);
    }
    found = create();
    entries.set(id, found);
  }
  return found as R;
}

/** Bumped when every entry is forgotten, so views in use take fresh ones. */
let cleared = $state(0);

/** Uses the entry of the current key while the calling component lives. */
function use<R extends Resource>(current: () => R): () => R {
  const resource = $derived.by(() => {
    void cleared;
    return current();
  });
  $effect(() => {
    const r = resource;
    r.users++;
    if (r.stale) untrack(() => void r.refresh());
    return () => {
      r.users--;
    };
  });
  return () => resource;
}

export interface QuerySpec<T> {
  key: QueryKey;
  fetch: () => Promise<T>;
}

/** Reads a value; `spec` may depend on props and state, and the entry follows its key. */
export function useQuery<T>(spec: () => QuerySpec<T>) {
  const current = use(() => {
    const { key, fetch } = spec();
    return entry(key, () => new QueryEntry<T>(key, fetch));
  });
  return {
    get data() {
      return current().data;
    },
    get error() {
      return current().error;
    },
    get loading() {
      return current().loading;
    },
    refresh: () => current().refresh(),
  };
}

export interface PagedSpec<T> {
  key: QueryKey;
  fetchPage: (cursor: string | null, limit: number) => Promise<Page<T>>;
}

/** Reads a paged list; the returned entry is shared with every other user of the key. */
export function usePaged<T>(spec: () => PagedSpec<T>): () => PagedEntry<T> {
  return use(() => {
    const { key, fetchPage } = spec();
    return entry(key, () => new PagedEntry<T>(key, fetchPage));
  });
}

/** Loads the first page of a paged list before a view shows it (the start-up screen), so the
 *  view is drawn once, complete. A failure leaves nothing behind: the view loads it again. */
export async function prefetchPaged<T>(spec: PagedSpec<T>): Promise<void> {
  const e = entry(spec.key, () => new PagedEntry<T>(spec.key, spec.fetchPage));
  if (!e.stale) return;
  await e.refresh();
  if (e.error && e.users === 0) entries.delete(hash(spec.key));
}

/** The value of `spec`, fetching it if it is missing or stale (for event handlers). */
export async function fetchQuery<T>(spec: QuerySpec<T>): Promise<T> {
  const e = entry(spec.key, () => new QueryEntry<T>(spec.key, spec.fetch));
  if (e.pending) await e.pending;
  else if (e.stale || e.data === undefined) await e.refresh();
  if (e.error) throw e.error;
  return e.data as T;
}

/** The cached value under `key`, if any. */
export function getQueryData<T>(spec: QuerySpec<T>): T | undefined {
  const e = entries.get(hash(spec.key));
  return e instanceof QueryEntry ? (e.data as T | undefined) : undefined;
}

/** Puts a value Rust just returned under `spec`'s key, so views show it without a round trip. */
export function setQueryData<T>(spec: QuerySpec<T>, data: T) {
  const e = entry(spec.key, () => new QueryEntry<T>(spec.key, spec.fetch));
  if (e instanceof QueryEntry) e.set(data);
}

/** Marks every entry whose key starts with one of `prefixes` stale; refetches those in use. */
export function invalidate(...prefixes: QueryKey[]): Promise<void> {
  const pending: Promise<void>[] = [];
  for (const [id, e] of entries) {
    if (!prefixes.some((p) => matches(e.key, p))) continue;
    e.stale = true;
    if (e.users > 0) pending.push(e.refresh());
    // An unused list would be reloaded from its first page anyway: forget it.
    else if (e instanceof PagedEntry) entries.delete(id);
  }
  return Promise.all(pending).then(() => undefined);
}

/** Forgets everything (a fresh workspace, or between tests). */
export function clearQueries() {
  entries.clear();
  cleared++;
}

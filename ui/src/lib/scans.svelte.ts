// Receipts being read: every drop (or pick) is a scan, and every file in it follows the steps
// Rust reports on the scan's channel. This is the UI's record of work in progress; the drafts
// it makes are read through the query layer like any other expense.

import { api, AppError, type Expense, type ExpenseId, type ScanEvent, type ScanStage, type TicketId } from './ipc';
import { notifyError } from './notices.svelte';
import { invalidate } from './query.svelte';

export type FileOutcome =
  | { kind: 'pending' }
  | { kind: 'read'; expense: Expense }
  | { kind: 'failed'; error: AppError };

/** What happened to a draft after it was read (so the list can say so). */
export type Settled = { kind: 'filed'; ticket: TicketId; number: number } | { kind: 'discarded' };

export interface ScanFileState {
  name: string;
  path: string;
  stage: ScanStage;
  /** 0..1 over the whole file. */
  fraction: number;
  outcome: FileOutcome;
  settled?: Settled;
}

export interface Scan {
  id: number;
  /** The paths given (files and folders), before Rust lists what is in them. */
  paths: string[];
  /** Known once Rust has listed the files. */
  files: ScanFileState[] | null;
  finished: { read: number; failed: number } | null;
  /** The scan as a whole could not run (the workspace is not open, for example). */
  error: AppError | null;
}

export const scans = $state<{ list: Scan[]; open: boolean; announcement: string }>({
  list: [],
  open: true,
  announcement: '',
});

let nextId = 1;

function announce(text: string) {
  scans.announcement = text;
}

function apply(scan: Scan, event: ScanEvent) {
  switch (event.kind) {
    case 'started':
      scan.files = event.files.map((f) => ({ ...f, stage: 'queued', fraction: 0, outcome: { kind: 'pending' } }));
      if (event.files.length === 0) announce('No receipt images were found in what was dropped.');
      break;
    case 'progress': {
      const file = scan.files?.[event.index];
      if (!file) return;
      if (file.stage !== event.stage && (event.stage === 'loading_models' || event.stage === 'opening_image')) {
        announce(`Reading ${file.name}…`);
      }
      file.stage = event.stage;
      file.fraction = event.fraction ?? file.fraction;
      break;
    }
    case 'read': {
      const file = scan.files?.[event.index];
      if (!file) return;
      file.outcome = { kind: 'read', expense: event.expense };
      file.fraction = 1;
      announce(`${file.name} read.`);
      void invalidate(['expenses']);
      break;
    }
    case 'failed': {
      const file = scan.files?.[event.index];
      if (!file) return;
      file.outcome = { kind: 'failed', error: AppError.from(event.error) };
      announce(`${file.name} could not be read: ${event.error.message}.`);
      break;
    }
    case 'finished':
      scan.finished = { read: event.read, failed: event.failed };
      announce(summary(scan));
      break;
  }
}

/** "2 receipts read, 1 could not be read." */
export function summary(scan: Scan): string {
  if (scan.error) return `The receipts could not be read: ${scan.error.message}.`;
  if (!scan.files) return 'Looking for receipts…';
  if (scan.files.length === 0) return 'No receipt images found.';
  const read = scan.finished?.read ?? scan.files.filter((f) => f.outcome.kind === 'read').length;
  const failed = scan.finished?.failed ?? scan.files.filter((f) => f.outcome.kind === 'failed').length;
  const parts = [`${read} ${read === 1 ? 'receipt' : 'receipts'} read`];
  if (failed > 0) parts.push(`${failed} could not be read`);
  if (!scan.finished) parts.push(`${scan.files.length - read - failed} to go`);
  return `${parts.join(', ')}.`;
}

/** Reads `paths` (files or folders). Scans run one file at a time in Rust; several queue up. */
export function scanReceipts(paths: string[]): Promise<void> {
  if (paths.length === 0) return Promise.resolve();
  scans.list.push({ id: nextId++, paths, files: null, finished: null, error: null });
  // The proxy, so updates from the channel reach the screen.
  const scan = scans.list[scans.list.length - 1];
  scans.open = true;
  announce(`Reading ${paths.length === 1 ? 'one item' : `${paths.length} items`}…`);
  return api.scanReceipts(paths, (event) => apply(scan, event)).then(
    () => undefined,
    (e: unknown) => {
      scan.error = AppError.from(e);
      announce(summary(scan));
    },
  );
}

/** Asks for receipt files (or folders) with the system's chooser, then reads them. */
export async function pickAndScan(folders = false): Promise<void> {
  try {
    const paths = await api.pickReceipts(folders);
    await scanReceipts(paths);
  } catch (e) {
    notifyError(e);
  }
}

export function isBusy(scan: Scan): boolean {
  return !scan.finished && !scan.error;
}

/** Forgets finished scans (the drafts they made stay). */
export function clearFinished() {
  const busy = scans.list.filter(isBusy);
  scans.list.splice(0, scans.list.length, ...busy);
}

function fileOf(id: ExpenseId): { scan: Scan; index: number } | null {
  for (const scan of scans.list) {
    const index = scan.files?.findIndex((f) => f.outcome.kind === 'read' && f.outcome.expense.id === id) ?? -1;
    if (index >= 0) return { scan, index };
  }
  return null;
}

/** Records that a draft from a scan was filed or discarded. */
export function settle(id: ExpenseId, settled: Settled) {
  const found = fileOf(id);
  if (found?.scan.files) found.scan.files[found.index].settled = settled;
}

/** The next draft from the same drop still to review after `id`, if any (wrapping around). */
export function nextDraft(id: ExpenseId): { id: ExpenseId; name: string; left: number } | null {
  const found = fileOf(id);
  if (!found?.scan.files) return null;
  const files = found.scan.files;
  const waiting = (i: number) => i !== found.index && files[i].outcome.kind === 'read' && !files[i].settled;
  const left = files.filter((_, i) => waiting(i)).length;
  for (let step = 1; step < files.length; step++) {
    const i = (found.index + step) % files.length;
    const file = files[i];
    if (waiting(i) && file.outcome.kind === 'read') return { id: file.outcome.expense.id, name: file.name, left };
  }
  return null;
}

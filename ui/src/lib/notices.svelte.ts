// Short messages about what just happened ("Ticket #12 created") and errors with no better place.

import { AppError } from './ipc';

export interface Notice {
  id: number;
  kind: 'info' | 'error';
  text: string;
}

export const notices = $state<Notice[]>([]);
let next = 1;

export function notify(text: string, kind: Notice['kind'] = 'info') {
  const id = next++;
  notices.push({ id, kind, text });
  setTimeout(() => dismiss(id), kind === 'error' ? 10_000 : 4_000);
}

export function notifyError(error: unknown) {
  notify(AppError.from(error).message, 'error');
}

export function dismiss(id: number) {
  const i = notices.findIndex((n) => n.id === id);
  if (i >= 0) notices.splice(i, 1);
}

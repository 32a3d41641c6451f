// Keyboard shortcuts. Screens add a layer of bindings while they are shown; a key goes to the
// newest layer that binds it. Nothing fires while the user types or while a dialog is open
// (dialogs handle their own keys: Escape closes them).

import { onDestroy } from 'svelte';
import type { Action } from './ipc';

/** Key names: the character (`n`, `/`, `?`), `Enter`, `Escape`, or `mod+k` / `mod+s` for Ctrl/Cmd+K / S. */
export type Bindings = Record<string, (() => void) | undefined>;

const layers: (() => Bindings)[] = [];

/** Binds keys while the calling component lives; `bindings` is read on every key press. */
export function useShortcuts(bindings: () => Bindings) {
  layers.push(bindings);
  onDestroy(() => {
    const i = layers.lastIndexOf(bindings);
    if (i >= 0) layers.splice(i, 1);
  });
}

function isTyping(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  if (target.isContentEditable) return true;
  if (target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement) return true;
  if (target instanceof HTMLInputElement) {
    return !['checkbox', 'radio', 'button', 'submit', 'reset', 'range', 'color'].includes(target.type);
  }
  return false;
}

function isControl(target: EventTarget | null): boolean {
  return target instanceof HTMLElement && target.closest('button, a[href], input, select, textarea, summary') !== null;
}

function keyName(event: KeyboardEvent): string | null {
  const letter = event.key.toLowerCase();
  if ((event.ctrlKey || event.metaKey) && !event.altKey && (letter === 'k' || letter === 's')) return `mod+${letter}`;
  if (event.ctrlKey || event.metaKey || event.altKey) return null;
  return event.key;
}

export function handleKeydown(event: KeyboardEvent) {
  if (event.defaultPrevented || event.isComposing) return;
  if (document.querySelector('dialog[open]')) return;
  const key = keyName(event);
  if (key === null) return;
  // Ctrl/Cmd shortcuts work in fields too: they type nothing.
  if (isTyping(event.target) && !key.startsWith('mod+')) return;
  // Enter on a button or link activates it; only elsewhere does it open the selection.
  if (key === 'Enter' && isControl(event.target)) return;
  for (let i = layers.length - 1; i >= 0; i--) {
    const action = layers[i]()[key];
    if (action) {
      event.preventDefault();
      action();
      return;
    }
  }
}

/** The shortcuts, for the help sheet; `needs` is what the role must allow for the key to work. */
export const SHORTCUTS: { keys: string[]; what: string; where: string; needs?: Action }[] = [
  { keys: ['n'], what: 'New ticket', where: 'Anywhere', needs: 'create_ticket' },
  { keys: ['/', 'Ctrl K'], what: 'Search tickets', where: 'Anywhere' },
  { keys: ['?'], what: 'Show keyboard shortcuts', where: 'Anywhere' },
  { keys: ['a'], what: 'Add receipts (photos or scans) to read', where: 'Anywhere', needs: 'submit_expense' },
  { keys: ['j'], what: 'Next ticket', where: 'Queue and ticket' },
  { keys: ['k'], what: 'Previous ticket', where: 'Queue and ticket' },
  { keys: ['Enter'], what: 'Open the selected ticket', where: 'Queue' },
  { keys: ['Esc'], what: 'Close a dialog, or go back', where: 'Anywhere' },
  { keys: ['p'], what: 'Start work, resume or reopen', where: 'Ticket', needs: 'transition_ticket' },
  { keys: ['h'], what: 'Put on hold', where: 'Ticket', needs: 'transition_ticket' },
  { keys: ['r'], what: 'Resolve', where: 'Ticket', needs: 'transition_ticket' },
  { keys: ['c'], what: 'Close ticket', where: 'Ticket', needs: 'transition_ticket' },
  { keys: ['Ctrl S'], what: 'Save the draft', where: 'Receipt review', needs: 'submit_expense' },
];

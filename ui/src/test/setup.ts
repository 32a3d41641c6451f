import '@testing-library/jest-dom/vitest';
import { mockConvertFileSrc, mockIPC, mockWindows } from '@tauri-apps/api/mocks';

// jsdom has <dialog> but not its methods: open and close it the way a browser would.
HTMLDialogElement.prototype.showModal = function (this: HTMLDialogElement) {
  this.setAttribute('open', '');
};
HTMLDialogElement.prototype.close = function (this: HTMLDialogElement) {
  if (!this.hasAttribute('open')) return;
  this.removeAttribute('open');
  this.dispatchEvent(new Event('close'));
};

// The Tauri side of the page that is not a command: the window's events (files dropped on it),
// channels (scan progress) and the URLs of stored files. Commands go to the fake desk instead.
mockWindows('main');
mockIPC(() => undefined, { shouldMockEvents: true });
mockConvertFileSrc('linux');

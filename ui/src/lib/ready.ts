// Tells the app, once, that the first screen is interactive (its startup figures use this).

import { commands } from '../bindings';

let told = false;

export function markInteractive() {
  if (told) return;
  told = true;
  // After the frame that shows the screen has been painted.
  requestAnimationFrame(() => {
    setTimeout(() => {
      Promise.resolve()
        .then(() => commands.uiReady?.())
        .catch(() => {});
    }, 0);
  });
}

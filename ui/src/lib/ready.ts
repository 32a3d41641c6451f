// Tells the app, once, that the first screen is interactive (its startup figures use this), with
// the UI's own milestones on the way there, which Rust logs beside its own
// (`RUST_LOG=tallydesk::startup=debug`).

import { commands, type UiMilestone } from '../bindings';

let asked = false;
let told = false;
const milestones: UiMilestone[] = [];

const at = (ms: number) => Math.max(0, Math.round(ms));

/** Notes a step on the way to the first screen (nothing once it is there). */
export function milestone(step: string) {
  if (!told) milestones.push({ step, at_ms: at(performance.now()) });
}

/** The browser's own timings: the document, what it loaded, and its first paints. */
function pageTimings(): UiMilestone[] {
  const entries = (type: string) => performance.getEntriesByType?.(type) ?? [];
  const out: UiMilestone[] = [];
  for (const nav of entries('navigation') as PerformanceNavigationTiming[]) {
    out.push({ step: 'document received', at_ms: at(nav.responseEnd) });
    out.push({ step: 'document parsed', at_ms: at(nav.domInteractive) });
  }
  for (const r of entries('resource') as PerformanceResourceTiming[]) {
    out.push({ step: `loaded ${r.name.replace(/^.*\//, '')}`, at_ms: at(r.responseEnd) });
  }
  for (const p of entries('paint')) out.push({ step: p.name, at_ms: at(p.startTime) });
  return out;
}

export function markInteractive() {
  if (asked) return;
  asked = true;
  milestone('first screen rendered');
  // After the frame that shows the screen has been painted.
  requestAnimationFrame(() => {
    milestone('frame started');
    setTimeout(() => {
      milestone('frame painted');
      told = true;
      const steps = [...pageTimings(), ...milestones].sort((a, b) => a.at_ms - b.at_ms);
      Promise.resolve()
        .then(() => commands.uiReady?.(steps, at(performance.now())))
        .catch(() => {});
    }, 0);
  });
}

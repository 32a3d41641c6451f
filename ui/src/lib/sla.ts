// A ticket's SLA targets as people read them. Rust sends each target's state when the ticket is
// read; between reads the state is carried forward here from `due_at` and `next_change_at`, so a
// countdown moves (and turns "at risk", then "breached") without asking Rust again.

import { duration } from './format';
import type { SlaState, Target, TargetState } from './ipc';

export const TARGET_LABEL: Record<Target, string> = {
  first_response: 'First response',
  next_response: 'Next response',
  resolution: 'Resolution',
};

export const SLA_STATE_LABEL: Record<SlaState, string> = {
  running: 'On track',
  paused: 'Paused',
  at_risk: 'At risk',
  breached: 'Breached',
  met: 'Met',
};

const time = (iso: string | null | undefined) => (iso ? Date.parse(iso) : NaN);

/** `target` as it stands at `now`: a running clock past its warning is at risk, past its due time breached. */
export function targetAt(target: TargetState, now: number): TargetState {
  if (target.state !== 'running' && target.state !== 'at_risk') return target;
  const due = time(target.due_at);
  if (now >= due) {
    return { ...target, state: 'breached', breached_at: target.due_at, remaining_seconds: Math.round((due - now) / 1000) };
  }
  const change = time(target.next_change_at);
  if (target.state === 'running' && now >= change && change < due) {
    return { ...target, state: 'at_risk', at_risk_at: target.next_change_at };
  }
  return target;
}

/** Time left until `iso`, rounded up ("1 min left" until it is due). */
function left(iso: string | null | undefined, now: number, fallbackSeconds: number): string {
  const ms = Number.isNaN(time(iso)) ? fallbackSeconds * 1000 : time(iso) - now;
  return `${duration(Math.max(1, Math.ceil(ms / 60_000)))} left`;
}

/** The countdown in words, so it reads without its colour: "Breached 12 min ago",
 *  "At risk · 9 min left", "2 h 10 min left", "Paused", "Met". */
export function countdown(target: TargetState, now: number): string {
  const t = targetAt(target, now);
  switch (t.state) {
    case 'running':
      return left(t.due_at, now, t.remaining_seconds);
    case 'at_risk':
      return `At risk · ${left(t.due_at, now, t.remaining_seconds)}`;
    case 'breached': {
      const since = time(t.breached_at ?? t.due_at);
      const minutes = Number.isNaN(since) ? Math.floor(-t.remaining_seconds / 60) : Math.floor((now - since) / 60_000);
      // Past a day, the days say enough (and the text fits the queue's column).
      if (minutes < 1) return 'Breached just now';
      return `Breached ${minutes >= 24 * 60 ? duration(Math.floor(minutes / (24 * 60)) * 24 * 60) : duration(minutes)} ago`;
    }
    case 'paused':
      return 'Paused';
    case 'met':
      return 'Met';
  }
}

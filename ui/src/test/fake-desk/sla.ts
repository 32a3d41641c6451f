// SLAs: the policies and calendars as stored, each ticket's SLA as a test sets it, what the
// UI said is on screen, and the mute.

import type { CalendarInput, CalendarRecord, Mute, Policy, PolicyInput, TargetState, TicketSla } from '../../lib/ipc';
import { fail, ok, uuid } from './base';

const URGENCY: Record<TargetState['state'], number> = { breached: 0, at_risk: 1, running: 2, paused: 3, met: 4 };

/** The target a ticket row shows: the most urgent of its SLA's. */
export const mostUrgent = (sla: TicketSla | undefined) =>
  sla
    ? ([...sla.targets].sort((a, b) => URGENCY[a.state] - URGENCY[b.state] || a.remaining_seconds - b.remaining_seconds)[0] ?? null)
    : null;

export function slaDesk() {
  const policies: Policy[] = [];
  const calendars: CalendarRecord[] = [];
  const slas = new Map<string, TicketSla>();
  /** Every `watchTicket` call, in order. */
  const watched: (string | null)[] = [];
  /** Alerts muted until (Rust keeps it; the tray menu can change it). */
  const state = { mutedUntil: null as string | null };

  const commands = {
    watchTicket: (id: string | null): Promise<void> => {
      watched.push(id);
      return Promise.resolve();
    },
    muteAlerts: (mute: Mute): Promise<string | null> => {
      const hours = mute === 'one_hour' ? 1 : mute === 'until_tomorrow' ? 16 : 0;
      state.mutedUntil = hours ? new Date(Date.now() + hours * 3_600_000).toISOString() : null;
      return Promise.resolve(state.mutedUntil);
    },
    alertsMuted: (): Promise<string | null> => Promise.resolve(state.mutedUntil),
    listSlaPolicies: () => ok([...policies].sort((a, b) => a.position - b.position)),
    saveSlaPolicy: (id: string | null, input: PolicyInput, version: number | null) => {
      // The checks the tests rely on, with Rust's fields and messages.
      if (!input.name.trim()) return fail<Policy>('invalid_field', 'name must not be empty', 'name');
      const targets = ['first_response_minutes', 'next_response_minutes', 'resolution_minutes'] as const;
      if (targets.every((f) => input[f] == null)) {
        return fail<Policy>('invalid_field', 'set at least one target (first response, next response or resolution)', 'resolution_minutes');
      }
      for (const f of targets) {
        const m = input[f];
        if (m != null && (m < 1 || m > 525_600)) return fail<Policy>('invalid_field', `${m} minutes: a target is 1 minute to a year`, f);
      }
      if (input.business_hours && !input.calendar_id) return fail<Policy>('invalid_field', 'business hours need a calendar', 'calendar_id');
      if (id === null) {
        const policy: Policy = { ...input, name: input.name.trim(), id: uuid(), version: 1 };
        policies.push(policy);
        return ok(policy);
      }
      const policy = policies.find((p) => p.id === id);
      if (!policy) return fail<Policy>('not_found', 'policy not found');
      if (version !== null && version !== policy.version) return fail<Policy>('stale_version', 'the policy changed since you opened it; reload it');
      Object.assign(policy, input, { name: input.name.trim(), version: policy.version + 1 });
      return ok(policy);
    },
    deleteSlaPolicy: (id: string) => {
      const i = policies.findIndex((p) => p.id === id);
      if (i < 0) return fail<null>('not_found', 'policy not found');
      policies.splice(i, 1);
      return ok(null);
    },
    listCalendars: () => ok([...calendars].sort((a, b) => a.name.localeCompare(b.name))),
    saveCalendar: (id: string | null, input: CalendarInput, version: number | null) => {
      if (!input.name.trim()) return fail<CalendarRecord>('invalid_field', 'name must not be empty', 'name');
      if (!/^(UTC|[A-Z][A-Za-z_]+\/[A-Za-z_/]+)$/.test(input.time_zone)) {
        return fail<CalendarRecord>('invalid_field', `"${input.time_zone}" is not an IANA time zone such as Europe/Paris`, 'time_zone');
      }
      for (const ranges of Object.values(input.weekly)) {
        for (const [open, close] of ranges) {
          if (!/^\d\d:\d\d$/.test(open) || !/^\d\d:\d\d$/.test(close)) {
            return fail<CalendarRecord>('invalid_field', `"${/^\d\d:\d\d$/.test(open) ? close : open}" is not a time such as 09:00`, 'weekly');
          }
          if (open >= close) return fail<CalendarRecord>('invalid_field', `${open}–${close}: the hours must end after they start`, 'weekly');
        }
      }
      if (id === null) {
        const calendar: CalendarRecord = { ...structuredClone(input), name: input.name.trim(), id: uuid(), version: 1 };
        calendars.push(calendar);
        return ok(calendar);
      }
      const calendar = calendars.find((c) => c.id === id);
      if (!calendar) return fail<CalendarRecord>('not_found', 'calendar not found');
      if (version !== null && version !== calendar.version) {
        return fail<CalendarRecord>('stale_version', 'the calendar changed since you opened it; reload it');
      }
      Object.assign(calendar, structuredClone(input), { name: input.name.trim(), version: calendar.version + 1 });
      return ok(calendar);
    },
    deleteCalendar: (id: string) => {
      const i = calendars.findIndex((c) => c.id === id);
      if (i < 0) return fail<null>('not_found', 'calendar not found');
      const user = policies.find((p) => p.calendar_id === id);
      if (user) return fail<null>('calendar_in_use', `the policy "${user.name}" uses this calendar; change it first`);
      calendars.splice(i, 1);
      return ok(null);
    },
  };

  return { policies, calendars, slas, watched, state, commands };
}

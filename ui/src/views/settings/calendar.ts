// Business calendars as the settings show them: the days, the time zones offered, and a short
// summary of a week's hours.

import type { WeeklyHours } from '../../lib/ipc';

export const DAYS = [
  ['mon', 'Monday'],
  ['tue', 'Tuesday'],
  ['wed', 'Wednesday'],
  ['thu', 'Thursday'],
  ['fri', 'Friday'],
  ['sat', 'Saturday'],
  ['sun', 'Sunday'],
] as const;

export type Day = (typeof DAYS)[number][0];

const COMMON_ZONES = [
  'UTC',
  'Europe/London',
  'Europe/Dublin',
  'Europe/Lisbon',
  'Europe/Paris',
  'Europe/Berlin',
  'Europe/Madrid',
  'Europe/Amsterdam',
  'Europe/Stockholm',
  'Europe/Warsaw',
  'Europe/Athens',
  'Europe/Istanbul',
  'Africa/Lagos',
  'Africa/Johannesburg',
  'Africa/Nairobi',
  'Asia/Dubai',
  'Asia/Kolkata',
  'Asia/Singapore',
  'Asia/Kuala_Lumpur',
  'Asia/Shanghai',
  'Asia/Tokyo',
  'Australia/Sydney',
  'Pacific/Auckland',
  'America/Sao_Paulo',
  'America/New_York',
  'America/Chicago',
  'America/Denver',
  'America/Los_Angeles',
];

/** The zones to suggest: the common ones first, then every zone the system knows. */
export function timeZones(): string[] {
  const intl = Intl as typeof Intl & { supportedValuesOf?: (key: 'timeZone') => string[] };
  let all: string[] = [];
  try {
    all = intl.supportedValuesOf?.('timeZone') ?? [];
  } catch {
    all = [];
  }
  return [...new Set([...COMMON_ZONES, ...all])];
}

/** This computer's zone, for a new calendar. */
export function localZone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}

/** Monday to Friday, 09:00–17:00. */
export function officeHours(): WeeklyHours {
  const day = (): [string, string][] => [['09:00', '17:00']];
  return { mon: day(), tue: day(), wed: day(), thu: day(), fri: day(), sat: [], sun: [] };
}

const SHORT: Record<Day, string> = { mon: 'Mon', tue: 'Tue', wed: 'Wed', thu: 'Thu', fri: 'Fri', sat: 'Sat', sun: 'Sun' };

/** "Mon–Fri 09:00–17:00; Sat 10:00–14:00", or "No business hours". */
export function weekSummary(weekly: WeeklyHours): string {
  const text = (d: Day) => weekly[d].map(([a, b]) => `${a}–${b}`).join(', ');
  const parts: string[] = [];
  let i = 0;
  while (i < DAYS.length) {
    const [day] = DAYS[i];
    let j = i;
    while (j + 1 < DAYS.length && text(DAYS[j + 1][0]) === text(day)) j++;
    if (text(day)) parts.push(`${SHORT[day]}${j > i ? `–${SHORT[DAYS[j][0]]}` : ''} ${text(day)}`);
    i = j + 1;
  }
  return parts.join('; ') || 'No business hours';
}

// Dates and amounts as people read them.

const full = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const monthDay = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto', style: 'short' });

export function fullDate(iso: string): string {
  return full.format(new Date(iso));
}

/** "5 min ago", "yesterday", or a date when older than a week. */
export function ago(iso: string, now = Date.now()): string {
  const seconds = (new Date(iso).getTime() - now) / 1000;
  const abs = Math.abs(seconds);
  if (abs < 45) return 'just now';
  if (abs < 3600) return relative.format(Math.round(seconds / 60), 'minute');
  if (abs < 86400) return relative.format(Math.round(seconds / 3600), 'hour');
  if (abs < 7 * 86400) return relative.format(Math.round(seconds / 86400), 'day');
  return monthDay.format(new Date(iso));
}

/** Rust's messages are lower-case clauses ("title must not be empty"); shown as sentences. */
export function sentence(message: string): string {
  const text = message.charAt(0).toUpperCase() + message.slice(1);
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

const moneyFormats = new Map<string, Intl.NumberFormat | null>();

/** An amount Rust sends as a decimal string ("1234.50") with its currency, as people read it
 *  ("MYR 1,234.50"). An unknown currency code shows the amount as it is, with the code. */
export function money(amount: string | null | undefined, currency: string): string {
  if (amount === null || amount === undefined || amount === '') return '—';
  let format = moneyFormats.get(currency);
  if (format === undefined) {
    try {
      format = new Intl.NumberFormat(undefined, { style: 'currency', currency, currencyDisplay: 'code' });
    } catch {
      format = null;
    }
    moneyFormats.set(currency, format);
  }
  const value = Number(amount);
  return format && Number.isFinite(value) ? format.format(value) : `${amount} ${currency}`;
}

const calendarDay = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeZone: 'UTC' });

/** A day ("2025-03-14") as people read it; the day itself, whatever the time zone. */
export function calendarDate(iso: string | null | undefined): string {
  if (!iso) return '—';
  const date = new Date(`${iso}T00:00:00Z`);
  return Number.isNaN(date.getTime()) ? iso : calendarDay.format(date);
}

/** A length of time, to the minute: "9 min", "2 h 10 min", "3 d 4 h". */
export function duration(minutes: number): string {
  const m = Math.max(0, Math.round(minutes));
  if (m < 60) return `${m} min`;
  if (m < 24 * 60) {
    const h = Math.floor(m / 60);
    return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  }
  const d = Math.floor(m / (24 * 60));
  const h = Math.floor((m % (24 * 60)) / 60);
  return h ? `${d} d ${h} h` : `${d} d`;
}

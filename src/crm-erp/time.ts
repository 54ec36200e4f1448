/**
 * Calendar helpers for the built-in CRM/ERP: local dates in an IANA time zone, business
 * days (Monday–Friday), and wall-clock ↔ instant conversion, all with the standard `Intl`
 * API (no time-zone library). Dates are `YYYY-MM-DD` strings throughout.
 */

const DAY_MS = 86_400_000;
const WEEKDAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'] as const;

export interface LocalParts { year: number; month: number; day: number; hour: number; minute: number; second: number; weekday: number /* 0 = Sunday */ }

const fmtCache = new Map<string, Intl.DateTimeFormat>();
function formatter(tz: string): Intl.DateTimeFormat {
  let f = fmtCache.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit',
      hour: '2-digit', minute: '2-digit', second: '2-digit', weekday: 'short',
    });
    fmtCache.set(tz, f);
  }
  return f;
}

/** Wall-clock parts of instant `at` in time zone `tz`. @throws RangeError on an unknown zone */
export function localParts(at: Date, tz: string): LocalParts {
  const p: Record<string, string> = {};
  for (const { type, value } of formatter(tz).formatToParts(at)) p[type] = value;
  const wd = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'].indexOf(p.weekday!);
  return { year: +p.year!, month: +p.month!, day: +p.day!, hour: +p.hour! % 24, minute: +p.minute!, second: +p.second!, weekday: wd };
}

/** Offset of `tz` from UTC at instant `at`, in minutes (e.g. -420 for PDT). */
export function tzOffsetMinutes(at: Date, tz: string): number {
  const l = localParts(at, tz);
  const asUtc = Date.UTC(l.year, l.month - 1, l.day, l.hour, l.minute, l.second);
  return Math.round((asUtc - Math.floor(at.getTime() / 1000) * 1000) / 60_000);
}

/** The instant when the wall clock in `tz` shows `date` `hh:mm` (DST gaps resolve forward). */
export function zonedInstant(date: string, hhmm: string, tz: string): Date {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number];
  const [hh, mm] = hhmm.split(':').map(Number) as [number, number];
  const wall = Date.UTC(y, m - 1, d, hh, mm);
  let guess = wall - tzOffsetMinutes(new Date(wall), tz) * 60_000;
  guess = wall - tzOffsetMinutes(new Date(guess), tz) * 60_000;
  return new Date(guess);
}

/** ISO 8601 with the zone's offset, e.g. `2025-06-02T07:00:00-05:00`. */
export function isoInZone(at: Date, tz: string): string {
  const l = localParts(at, tz);
  const off = tzOffsetMinutes(at, tz);
  const sign = off < 0 ? '-' : '+';
  const a = Math.abs(off);
  return `${dateStr(l.year, l.month, l.day)}T${pad(l.hour)}:${pad(l.minute)}:${pad(l.second)}${sign}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}
function dateStr(y: number, m: number, d: number): string {
  return `${y}-${pad(m)}-${pad(d)}`;
}

/** The local calendar date of `at` in `tz`. */
export function localDate(at: Date, tz: string): string {
  const l = localParts(at, tz);
  return dateStr(l.year, l.month, l.day);
}

/** Day of week of a `YYYY-MM-DD` date (0 = Sunday). */
export function weekdayOf(date: string): number {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number];
  return new Date(Date.UTC(y, m - 1, d)).getUTCDay();
}

/** English name of a weekday number. */
export function weekdayName(n: number): string {
  return WEEKDAYS[((n % 7) + 7) % 7]!;
}

/** `date` plus `n` calendar days (n may be negative). */
export function addDays(date: string, n: number): string {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number];
  const t = new Date(Date.UTC(y, m - 1, d) + n * DAY_MS);
  return dateStr(t.getUTCFullYear(), t.getUTCMonth() + 1, t.getUTCDate());
}

/**
 * `date` moved by `n` business days (Monday–Friday); negative `n` moves back.
 * `n = 0` returns `date` itself when it is a business day, else the next one.
 */
export function addBusinessDays(date: string, n: number): string {
  let d = date;
  const isBiz = (x: string): boolean => { const w = weekdayOf(x); return w !== 0 && w !== 6; };
  if (n === 0) {
    while (!isBiz(d)) d = addDays(d, 1);
    return d;
  }
  const step = n > 0 ? 1 : -1;
  let left = Math.abs(n);
  while (left > 0) {
    d = addDays(d, step);
    if (isBiz(d)) left--;
  }
  return d;
}

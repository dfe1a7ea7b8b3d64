/** IMAP `date-time` (RFC 9051 §9): `"17-Jul-1996 02:44:25 -0700"`. */

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DATE_TIME = /^ ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$/;

const pad = (n: number) => String(n).padStart(2, '0');

/** Formats in UTC. */
export function formatDateTime(ms: number): string {
  const d = new Date(ms);
  return `${pad(d.getUTCDate())}-${MONTHS[d.getUTCMonth()]}-${d.getUTCFullYear()} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
}

/** Milliseconds since the epoch, or null when the text is not a valid date-time. */
export function parseDateTime(text: string): number | null {
  const m = DATE_TIME.exec(text);
  if (!m) return null;
  const month = MONTHS.findIndex((name) => name.toLowerCase() === m[2]!.toLowerCase());
  const [day, year, hh, mm, ss, zh, zm] = [m[1], m[3], m[4], m[5], m[6], m[8], m[9]].map(Number) as number[];
  if (month < 0 || day! < 1 || day! > 31 || hh! > 23 || mm! > 59 || ss! > 60 || zm! > 59) return null;
  const utc = Date.UTC(year!, month, day!, hh!, mm!, ss!);
  if (new Date(utc).getUTCDate() !== day) return null;
  const offset = (zh! * 60 + zm!) * 60_000 * (m[7] === '-' ? -1 : 1);
  return utc - offset;
}

/**
 * The subject convention of messages carrying health documents (Ref#2 ECO.2.1.3, DOMAIN.md §1.6):
 * `XDM/1.0/DDM+<label> <NAME> <first name> <birth date>`, e.g.
 * `XDM/1.0/DDM+ECHOGRAPHIE ABDOMINOPELVIENNE CORSE FIGATELLIX 12/10/1988`. The server keeps the subject as
 * it is; clients hide the `XDM/1.0/DDM+` prefix. Labels and names may hold spaces, so splitting the rest into
 * its parts is a best guess: the last three words are taken as name, first name and birth date when the last
 * one is a date.
 */

export const XDM_SUBJECT_PREFIX = 'XDM/1.0/DDM';

export interface XdmSubject {
  /** Text before the prefix, e.g. `[KO Intégration système !][902] ` or `Re: `. */
  before: string;
  /** Everything after `XDM/1.0/DDM+`. */
  description: string;
  label: string | null;
  family: string | null;
  given: string | null;
  /** The birth date as written. */
  birthDate: string | null;
  /** The birth date as `YYYY-MM-DD` when it is a valid date. */
  birthDateIso: string | null;
}

function isoDate(text: string): string | null {
  const dmy = /^(\d{2})[/.-](\d{2})[/.-](\d{4})$/.exec(text);
  const ymd = /^(\d{4})-?(\d{2})-?(\d{2})$/.exec(text);
  const parts = dmy ? [dmy[3]!, dmy[2]!, dmy[1]!] : ymd ? [ymd[1]!, ymd[2]!, ymd[3]!] : null;
  if (!parts) return null;
  const [y, mo, d] = parts.map(Number) as [number, number, number];
  const date = new Date(Date.UTC(y, mo - 1, d));
  if (date.getUTCFullYear() !== y || date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d) return null;
  return parts.join('-');
}

/** Parses a subject that follows the convention; null when it has no `XDM/1.0/DDM` marker. */
export function parseXdmSubject(subject: string): XdmSubject | null {
  const at = subject.toUpperCase().indexOf(XDM_SUBJECT_PREFIX);
  if (at < 0) return null;
  const description = subject
    .slice(at + XDM_SUBJECT_PREFIX.length)
    .replace(/^\+/, '')
    .trim();
  const words = description.split(/\s+/).filter(Boolean);
  const last = words[words.length - 1] ?? '';
  const birthDateIso = isoDate(last);
  const parsed = birthDateIso !== null && words.length >= 4;
  return {
    before: subject.slice(0, at),
    description,
    label: parsed ? words.slice(0, -3).join(' ') : null,
    family: parsed ? words[words.length - 3]! : null,
    given: parsed ? words[words.length - 2]! : null,
    birthDate: parsed ? last : null,
    birthDateIso: parsed ? birthDateIso : null,
  };
}

/** The subject as a client shows it: the `XDM/1.0/DDM+` prefix hidden, anything before it kept. */
export function displayXdmSubject(subject: string): string {
  const parsed = parseXdmSubject(subject);
  return parsed ? `${parsed.before}${parsed.description}` : subject;
}

/** Writes a subject in the convention; the birth date (`YYYY-MM-DD` or `YYYYMMDD`) as `DD/MM/YYYY`. */
export function formatXdmSubject(parts: { label: string; family: string; given: string; birthDate: string }): string {
  const iso = isoDate(parts.birthDate);
  const date = iso ? `${iso.slice(8, 10)}/${iso.slice(5, 7)}/${iso.slice(0, 4)}` : parts.birthDate;
  const clean = (s: string) => s.replace(/[\r\n]+/g, ' ').replace(/\s+/g, ' ').trim();
  return `${XDM_SUBJECT_PREFIX}+${clean(parts.label)} ${clean(parts.family).toUpperCase()} ${clean(parts.given)} ${date}`;
}

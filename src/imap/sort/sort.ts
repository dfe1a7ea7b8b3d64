import type { EnvelopeAddress, MessageMeta } from '../../mime/types.js';
import { decodeWords } from '../../mime/encoded-words.js';
import { ImapSyntaxError, type Token } from '../tokenizer.js';
import { baseSubject } from './base-subject.js';

/** SORT criteria (RFC 5256 §3, RFC 5957 DISPLAYFROM/DISPLAYTO) and the comparison they define. Pure. */

export type SortKey = 'ARRIVAL' | 'CC' | 'DATE' | 'FROM' | 'SIZE' | 'SUBJECT' | 'TO' | 'DISPLAYFROM' | 'DISPLAYTO';
export interface SortCriterion {
  key: SortKey;
  reverse: boolean;
}

const KEYS: readonly SortKey[] = ['ARRIVAL', 'CC', 'DATE', 'FROM', 'SIZE', 'SUBJECT', 'TO', 'DISPLAYFROM', 'DISPLAYTO'];

export function parseSortCriteria(list: readonly Token[]): SortCriterion[] {
  const out: SortCriterion[] = [];
  let reverse = false;
  for (const t of list) {
    const word = t.type === 'atom' && !t.section ? t.value.toUpperCase() : '';
    if (word === 'REVERSE') {
      if (reverse) throw new ImapSyntaxError('REVERSE twice');
      reverse = true;
      continue;
    }
    const key = KEYS.find((k) => k === word);
    if (!key) throw new ImapSyntaxError('Unknown sort criterion');
    out.push({ key, reverse });
    reverse = false;
  }
  if (reverse || out.length === 0) throw new ImapSyntaxError('Incomplete sort criteria');
  return out;
}

export interface SortMessage {
  seq: number;
  internalDate: number;
  size: number;
  meta: MessageMeta;
}

/** RFC 5256 §2.2: the sent date in ms, the internal date when the Date header is missing or unreadable. */
export function sentDate(m: { internalDate: number; meta: MessageMeta }): number {
  const parsed = m.meta.envelope.date ? Date.parse(m.meta.envelope.date.replace(/\s*\([^)]*\)\s*$/, '')) : NaN;
  return Number.isNaN(parsed) ? m.internalDate : parsed;
}

function firstMailbox(list: EnvelopeAddress[] | null): string {
  const a = list?.find((x) => x.mailbox !== null);
  return (a?.mailbox ?? '').toLowerCase();
}

function display(list: EnvelopeAddress[] | null): string {
  const a = list?.find((x) => x.mailbox !== null);
  if (!a) return '';
  const name = a.name ? decodeWords(a.name).trim() : '';
  return (name || `${a.mailbox}@${a.host ?? ''}`).normalize('NFC').toLowerCase();
}

type Extract = (m: SortMessage) => string | number;
const EXTRACT: Record<SortKey, Extract> = {
  ARRIVAL: (m) => m.internalDate,
  CC: (m) => firstMailbox(m.meta.envelope.cc),
  DATE: sentDate,
  FROM: (m) => firstMailbox(m.meta.envelope.from),
  SIZE: (m) => m.size,
  SUBJECT: (m) => baseSubject(m.meta.thread.subject ?? m.meta.envelope.subject).base,
  TO: (m) => firstMailbox(m.meta.envelope.to),
  DISPLAYFROM: (m) => display(m.meta.envelope.from),
  DISPLAYTO: (m) => display(m.meta.envelope.to),
};

/** Sorted by the criteria in order; ties by sequence number (RFC 5256 §3). */
export function sortMessages(messages: readonly SortMessage[], criteria: readonly SortCriterion[]): SortMessage[] {
  const keyed = messages.map((m) => ({ m, keys: criteria.map((c) => EXTRACT[c.key](m)) }));
  keyed.sort((a, b) => {
    for (let i = 0; i < criteria.length; i++) {
      const x = a.keys[i]!;
      const y = b.keys[i]!;
      const cmp = typeof x === 'number' && typeof y === 'number' ? x - y : String(x) < String(y) ? -1 : String(x) > String(y) ? 1 : 0;
      if (cmp !== 0) return criteria[i]!.reverse ? -cmp : cmp;
    }
    return a.m.seq - b.m.seq;
  });
  return keyed.map((k) => k.m);
}

import type { EnvelopeAddress } from './types.js';

/**
 * RFC 5322 address lists (From, To, Cc...) turned into IMAP ENVELOPE addresses, leniently: display names
 * stay raw (encoded words are not decoded, quotes are removed), a comment stands in for a missing display
 * name, groups produce the RFC 9051 start and end markers, and an address without a domain gets the
 * placeholder host `MISSING_DOMAIN` (a NIL host would read as a group marker).
 */

type Token =
  | { kind: 'word'; text: string; quoted: boolean }
  | { kind: 'comment'; text: string }
  | { kind: 'angle'; text: string }
  | { kind: 'special'; text: ',' | ':' | ';' }
  | { kind: 'space' };

export const MISSING_DOMAIN = 'MISSING_DOMAIN';

function tokenize(s: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < s.length) {
    const ch = s[i]!;
    if (/\s/.test(ch)) {
      while (i < s.length && /\s/.test(s[i]!)) i++;
      out.push({ kind: 'space' });
    } else if (ch === '"') {
      let text = '';
      for (i++; i < s.length && s[i] !== '"'; i++) text += s[i] === '\\' && i + 1 < s.length ? s[++i] : s[i];
      i++;
      out.push({ kind: 'word', text, quoted: true });
    } else if (ch === '(') {
      let depth = 0;
      let text = '';
      for (; i < s.length; i++) {
        const c = s[i]!;
        if (c === '\\' && i + 1 < s.length) text += s[++i];
        else if (c === '(' && depth++ === 0) continue;
        else if (c === ')' && --depth === 0) break;
        else text += c;
      }
      i++;
      out.push({ kind: 'comment', text: text.trim() });
    } else if (ch === '<') {
      const close = s.indexOf('>', i);
      const stop = close < 0 ? s.length : close;
      out.push({ kind: 'angle', text: s.slice(i + 1, stop) });
      i = stop + 1;
    } else if (ch === ',' || ch === ':' || ch === ';') {
      out.push({ kind: 'special', text: ch });
      i++;
    } else {
      let text = '';
      while (i < s.length && !/[\s"(<,:;]/.test(s[i]!)) text += s[i++];
      out.push({ kind: 'word', text, quoted: false });
    }
  }
  return out;
}

function splitAddress(spec: string, name: string | null): EnvelopeAddress | null {
  // Drop an obsolete source route (`@a,@b:user@host`).
  const addr = spec.replace(/^(?:@[^,:]*,?)+:/, '').trim();
  if (!addr && !name) return null;
  const at = addr.lastIndexOf('@');
  if (at < 0) return { name, adl: null, mailbox: addr || 'MISSING_MAILBOX', host: MISSING_DOMAIN };
  return { name, adl: null, mailbox: addr.slice(0, at) || 'MISSING_MAILBOX', host: addr.slice(at + 1) || MISSING_DOMAIN };
}

/** Builds one mailbox from the tokens between separators. */
function mailbox(tokens: Token[]): EnvelopeAddress | null {
  const angle = tokens.find((t) => t.kind === 'angle');
  const comments = tokens.filter((t) => t.kind === 'comment').map((t) => t.text).filter(Boolean);
  if (angle) {
    const words: string[] = [];
    let spaced = false;
    for (const t of tokens) {
      if (t === angle) break;
      if (t.kind === 'space') spaced = words.length > 0;
      if (t.kind !== 'word') continue;
      words.push((spaced ? ' ' : '') + t.text);
      spaced = false;
    }
    const name = words.join('').trim();
    return splitAddress(angle.text, name || comments[comments.length - 1] || null);
  }
  const spec = tokens
    .map((t) => (t.kind === 'word' ? (t.quoted ? `"${t.text.replace(/(["\\])/g, '\\$1')}"` : t.text) : ''))
    .join('');
  return splitAddress(spec, comments[comments.length - 1] ?? null);
}

/** Parses an address-list header value; returns null when it holds no address (the ENVELOPE NIL). */
export function parseAddressList(value: string | null): EnvelopeAddress[] | null {
  if (value === null) return null;
  const out: EnvelopeAddress[] = [];
  let current: Token[] = [];
  let inGroup = false;
  const flush = () => {
    const addr = mailbox(current);
    if (addr) out.push(addr);
    current = [];
  };
  for (const t of tokenize(value)) {
    if (t.kind === 'special' && t.text === ',') flush();
    else if (t.kind === 'special' && t.text === ':' && !inGroup && !current.some((c) => c.kind === 'angle')) {
      const name = current
        .filter((c) => c.kind === 'word')
        .map((c) => (c.kind === 'word' ? c.text : ''))
        .join(' ')
        .trim();
      out.push({ name: null, adl: null, mailbox: name, host: null });
      current = [];
      inGroup = true;
    } else if (t.kind === 'special' && t.text === ';' && inGroup) {
      flush();
      out.push({ name: null, adl: null, mailbox: null, host: null });
      inGroup = false;
    } else if (t.kind === 'special') {
      current.push({ kind: 'word', text: t.text, quoted: false });
    } else current.push(t);
  }
  flush();
  if (inGroup) out.push({ name: null, adl: null, mailbox: null, host: null });
  return out.length > 0 ? out : null;
}

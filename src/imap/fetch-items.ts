import { parseSection, sectionLabel, type SectionSpec } from './sections.js';
import { ImapSyntaxError, type Token } from './tokenizer.js';

/** FETCH data items (RFC 9051 §6.4.5, plus the RFC 3501 RFC822 forms and RFC 8970 PREVIEW), parsed from tokens. Pure. */

export type SimpleItem = 'FLAGS' | 'UID' | 'INTERNALDATE' | 'RFC822.SIZE' | 'ENVELOPE' | 'BODYSTRUCTURE' | 'BODY' | 'MODSEQ';

export type FetchItem =
  | { kind: SimpleItem }
  /** PREVIEW, PREVIEW (LAZY) (RFC 8970). */
  | { kind: 'PREVIEW'; lazy: boolean }
  | {
      kind: 'section';
      /** Response name without the partial origin: `BODY[1.TEXT]`, `RFC822.HEADER`. */
      name: string;
      spec: SectionSpec;
      peek: boolean;
      partial?: { start: number; count: number };
    }
  /** BINARY[part], BINARY.PEEK[part], BINARY.SIZE[part] (RFC 3516): the part with its transfer encoding removed. */
  | {
      kind: 'binary';
      name: string;
      path: number[];
      peek: boolean;
      sizeOnly: boolean;
      partial?: { start: number; count: number };
    };

const SIMPLE: readonly SimpleItem[] = ['FLAGS', 'UID', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODYSTRUCTURE', 'BODY', 'MODSEQ'];

const MACROS: Record<string, SimpleItem[]> = {
  ALL: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE'],
  FAST: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE'],
  FULL: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODY'],
};

function parsePartial(text: string): { start: number; count: number } {
  const m = /^(\d{1,10})\.([1-9]\d{0,9})$/.exec(text);
  if (!m) throw new ImapSyntaxError('Invalid partial specifier');
  return { start: Number(m[1]), count: Number(m[2]) };
}

function parseItem(token: Token): FetchItem {
  if (token.type !== 'atom') throw new ImapSyntaxError('Invalid fetch attribute');
  const name = token.value.toUpperCase();
  if (token.section && name.startsWith('BINARY')) {
    const spec = parseSection(token.section);
    if (spec.text !== null) throw new ImapSyntaxError('Invalid binary section');
    const label = spec.path.join('.');
    const sizeOnly = name === 'BINARY.SIZE';
    if (sizeOnly && token.partial !== undefined) throw new ImapSyntaxError('BINARY.SIZE takes no partial');
    const item: FetchItem = { kind: 'binary', name: `${sizeOnly ? 'BINARY.SIZE' : 'BINARY'}[${label}]`, path: spec.path, peek: name !== 'BINARY', sizeOnly };
    if (token.partial !== undefined) item.partial = parsePartial(token.partial);
    return item;
  }
  if (token.section) {
    if (name !== 'BODY' && name !== 'BODY.PEEK') throw new ImapSyntaxError(`Unsupported fetch attribute ${name}`);
    const spec = parseSection(token.section);
    const item: FetchItem = { kind: 'section', name: `BODY[${sectionLabel(spec)}]`, spec, peek: name === 'BODY.PEEK' };
    if (token.partial !== undefined) item.partial = parsePartial(token.partial);
    return item;
  }
  const simple = SIMPLE.find((s) => s === name);
  if (simple) return { kind: simple };
  if (name === 'PREVIEW') return { kind: 'PREVIEW', lazy: false };
  switch (name) {
    case 'RFC822':
      return { kind: 'section', name, spec: { path: [], text: null, fields: [] }, peek: false };
    case 'RFC822.HEADER':
      return { kind: 'section', name, spec: { path: [], text: 'HEADER', fields: [] }, peek: true };
    case 'RFC822.TEXT':
      return { kind: 'section', name, spec: { path: [], text: 'TEXT', fields: [] }, peek: false };
  }
  throw new ImapSyntaxError(`Unsupported fetch attribute ${name.slice(0, 40)}`);
}

function isPreview(token: Token | undefined): boolean {
  return token?.type === 'atom' && !token.section && token.value.toUpperCase() === 'PREVIEW';
}

/** The modifier list after PREVIEW: `(LAZY)` is the only one defined (RFC 8970 §3.1). Returns `lazy`. */
export function parsePreviewModifiers(list: readonly Token[]): boolean {
  if (list.length === 0) throw new ImapSyntaxError('Empty preview modifier list');
  for (const t of list) {
    if (t.type !== 'atom' || t.section || t.value.toUpperCase() !== 'LAZY') throw new ImapSyntaxError('Unsupported preview modifier');
  }
  return true;
}

/** A list token that follows PREVIEW and holds its modifiers (rather than being FETCH's own modifier list). */
export function isPreviewModifierList(token: Token | undefined): boolean {
  const first = token?.type === 'list' ? token.items[0] : undefined;
  return first?.type === 'atom' && !first.section && first.value.toUpperCase() === 'LAZY';
}

/** A macro, a single item, or a parenthesised list of items. */
export function parseFetchItems(token: Token): FetchItem[] {
  if (token.type === 'atom' && !token.section) {
    const macro = MACROS[token.value.toUpperCase()];
    if (macro) return macro.map((kind) => ({ kind }));
  }
  if (token.type === 'list') {
    if (token.items.length === 0) throw new ImapSyntaxError('Empty fetch attribute list');
    const items: FetchItem[] = [];
    for (let i = 0; i < token.items.length; i++) {
      const t = token.items[i]!;
      const next = token.items[i + 1];
      if (isPreview(t) && next?.type === 'list') {
        items.push({ kind: 'PREVIEW', lazy: parsePreviewModifiers(next.items) });
        i++;
      } else items.push(parseItem(t));
    }
    return items;
  }
  return [parseItem(token)];
}

export function needsMeta(items: readonly FetchItem[]): boolean {
  return items.some(
    (i) =>
      i.kind === 'ENVELOPE' ||
      i.kind === 'BODYSTRUCTURE' ||
      i.kind === 'BODY' ||
      i.kind === 'PREVIEW' ||
      (i.kind === 'section' && (i.spec.path.length > 0 || i.spec.text !== null)) ||
      (i.kind === 'binary' && i.path.length > 0),
  );
}

export function needsBody(items: readonly FetchItem[]): boolean {
  return items.some((i) => i.kind === 'section' || i.kind === 'binary' || i.kind === 'PREVIEW');
}

/** Whether every item that reads the message reads it whole and from its start (it can then be streamed). */
export function onlyWholeBodies(items: readonly FetchItem[]): boolean {
  return items.every((i) => (i.kind === 'section' ? i.spec.path.length === 0 && i.spec.text === null && !i.partial : i.kind !== 'binary' && i.kind !== 'PREVIEW'));
}

export function marksSeen(items: readonly FetchItem[]): boolean {
  return items.some((i) => (i.kind === 'section' || (i.kind === 'binary' && !i.sizeOnly)) && !i.peek);
}

import { attr, isElement, type XmlElement, type XmlNode } from './xml.js';

/**
 * The narrative block of a CDA section (`section/text`, CDA R2 §4.3.5) reduced to a small tree that is safe to
 * render: only the elements below survive, with a few checked attributes; every other element is unwrapped
 * (its text and allowed descendants are kept, the element itself is dropped), so a `<sup>` keeps its digits and
 * a `<renderMultiMedia>` (no text) vanishes. `linkHtml` becomes its text: no link is ever rendered. Text has
 * its white space collapsed. Nothing here is HTML: the webmail maps each tag to its own markup.
 */

export const NARRATIVE_TAGS = ['paragraph', 'list', 'item', 'table', 'caption', 'thead', 'tbody', 'tfoot', 'tr', 'th', 'td', 'content', 'br'] as const;
export type NarrativeTag = (typeof NARRATIVE_TAGS)[number];

/** `styleCode` values kept (CDA R2 §4.3.5.11); others are dropped. */
export const NARRATIVE_STYLES = ['Bold', 'Underline', 'Italics', 'Emphasis', 'Lrule', 'Rrule', 'Toprule', 'Botrule'] as const;
export type NarrativeStyle = (typeof NARRATIVE_STYLES)[number];

export interface NarrativeElement {
  tag: NarrativeTag;
  /** `list` only: `listType="ordered"`. */
  ordered?: boolean;
  /** `th`/`td` only, from 1 to 1000. */
  colspan?: number;
  rowspan?: number;
  styles?: NarrativeStyle[];
  children: NarrativeNode[];
}

export type NarrativeNode = NarrativeElement | string;

/** Elements whose direct white-space-only text is layout, not content. */
const STRUCTURAL = new Set<NarrativeTag>(['list', 'table', 'thead', 'tbody', 'tfoot', 'tr']);

function isNarrativeTag(local: string): local is NarrativeTag {
  return (NARRATIVE_TAGS as readonly string[]).includes(local);
}

function span(value: string | null): number | undefined {
  if (value === null || !/^\d{1,4}$/.test(value.trim())) return undefined;
  const n = Number(value);
  return n >= 1 && n <= 1000 ? n : undefined;
}

function styles(value: string | null): NarrativeStyle[] | undefined {
  if (value === null) return undefined;
  const kept = value.split(/\s+/).filter((s): s is NarrativeStyle => (NARRATIVE_STYLES as readonly string[]).includes(s));
  return kept.length > 0 ? kept : undefined;
}

function collapse(text: string): string {
  return text.replace(/\s+/g, ' ');
}

function linkText(el: XmlElement): string {
  return el.children.map((c) => (typeof c === 'string' ? c : linkText(c))).join('');
}

/** Appends text, merging it with a preceding string so unwrapped elements do not split words. */
function pushText(out: NarrativeNode[], text: string): void {
  const collapsed = collapse(text);
  if (collapsed === '') return;
  const last = out[out.length - 1];
  if (typeof last === 'string') out[out.length - 1] = collapse(last + collapsed);
  else out.push(collapsed);
}

function convertChildren(children: readonly XmlNode[], ns: string | null, out: NarrativeNode[]): NarrativeNode[] {
  for (const child of children) {
    if (!isElement(child)) {
      pushText(out, child);
      continue;
    }
    if (child.ns !== ns) {
      pushText(out, linkText(child));
      continue;
    }
    if (child.local === 'linkHtml') {
      pushText(out, linkText(child));
      continue;
    }
    if (!isNarrativeTag(child.local)) {
      convertChildren(child.children, ns, out);
      continue;
    }
    out.push(convertElement(child, child.local, ns));
  }
  return out;
}

function convertElement(el: XmlElement, tag: NarrativeTag, ns: string | null): NarrativeElement {
  const node: NarrativeElement = { tag, children: [] };
  if (tag === 'list' && attr(el, 'listType') === 'ordered') node.ordered = true;
  if (tag === 'th' || tag === 'td') {
    const colspan = span(attr(el, 'colspan'));
    const rowspan = span(attr(el, 'rowspan'));
    if (colspan !== undefined) node.colspan = colspan;
    if (rowspan !== undefined) node.rowspan = rowspan;
  }
  const style = styles(attr(el, 'styleCode'));
  if (style) node.styles = style;
  if (tag === 'br') return node;
  const children = convertChildren(el.children, ns, []);
  node.children = STRUCTURAL.has(tag) ? children.filter((c) => typeof c !== 'string' || c.trim() !== '') : trimEdges(children);
  return node;
}

/** Drops leading and trailing white space of a block's content. */
function trimEdges(nodes: NarrativeNode[]): NarrativeNode[] {
  const out = [...nodes];
  if (typeof out[0] === 'string') out[0] = out[0].trimStart();
  const last = out.length - 1;
  if (typeof out[last] === 'string') out[last] = (out[last] as string).trimEnd();
  return out.filter((n) => n !== '');
}

/** The safe tree of a `text` element's content (the `text` element itself is not part of it). */
export function narrativeOf(text: XmlElement | null): NarrativeNode[] {
  if (!text) return [];
  return trimEdges(convertChildren(text.children, text.ns, []));
}

/** Plain text of a narrative tree, blocks separated by line breaks (for previews and search). */
export function narrativeText(nodes: readonly NarrativeNode[]): string {
  const parts: string[] = [];
  const walk = (list: readonly NarrativeNode[]) => {
    for (const n of list) {
      if (typeof n === 'string') parts.push(n);
      else if (n.tag === 'br') parts.push('\n');
      else {
        const block = n.tag !== 'content' && n.tag !== 'td' && n.tag !== 'th';
        if (block) parts.push('\n');
        walk(n.children);
        if (n.tag === 'td' || n.tag === 'th') parts.push('\t');
        if (block) parts.push('\n');
      }
    }
  };
  walk(nodes);
  return parts
    .join('')
    .split('\n')
    .map((l) => l.replace(/[ \t]+/g, ' ').trim())
    .filter((l) => l !== '')
    .join('\n');
}

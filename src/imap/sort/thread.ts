import { baseSubject } from './base-subject.js';

/**
 * THREAD=ORDEREDSUBJECT and THREAD=REFERENCES (RFC 5256 §3), over what the sealed metadata keeps: Message-ID,
 * In-Reply-To, References, Subject and the sent date. Pure.
 */

export interface ThreadMessage {
  /** Sequence number or UID: what the response shows. */
  id: number;
  /** Sent date in ms (the Date header; the internal date when it has none or it is unreadable). */
  date: number;
  messageId: string | null;
  inReplyTo: string | null;
  references: readonly string[];
  subject: string | null;
}

/** A thread node: a message, or a placeholder (`id` null) whose children share a missing parent. */
export interface ThreadNode {
  id: number | null;
  children: ThreadNode[];
}

interface Container {
  message: ThreadMessage | null;
  parent: Container | null;
  children: Container[];
}

function byDateThenId(a: ThreadMessage, b: ThreadMessage): number {
  return a.date - b.date || a.id - b.id;
}

export function threadOrderedSubject(messages: readonly ThreadMessage[]): ThreadNode[] {
  const groups = new Map<string, ThreadMessage[]>();
  for (const m of [...messages].sort(byDateThenId)) {
    const key = baseSubject(m.subject).base;
    const list = groups.get(key);
    if (list) list.push(m);
    else groups.set(key, [m]);
  }
  // Threads in the order of their first message; every later message is a child of the first.
  return [...groups.values()]
    .sort((a, b) => byDateThenId(a[0]!, b[0]!))
    .map(([first, ...rest]) => ({ id: first!.id, children: rest.map((m) => ({ id: m.id, children: [] })) }));
}

function isAncestor(candidate: Container, of: Container): boolean {
  for (let c: Container | null = of; c; c = c.parent) if (c === candidate) return true;
  return false;
}

function link(parent: Container, child: Container): void {
  if (child.parent === parent || isAncestor(child, parent)) return;
  if (child.parent) child.parent.children = child.parent.children.filter((c) => c !== child);
  child.parent = parent;
  parent.children.push(child);
}

/** The date that orders a container: its message's, or its first child's once children are sorted. */
function containerDate(c: Container): ThreadMessage | null {
  if (c.message) return c.message;
  for (const child of c.children) {
    const d = containerDate(child);
    if (d) return d;
  }
  return null;
}

function compareContainers(a: Container, b: Container): number {
  const da = containerDate(a);
  const db = containerDate(b);
  if (!da || !db) return da ? -1 : db ? 1 : 0;
  return byDateThenId(da, db);
}

/** Step 4: removes empty leaves and promotes the children of empty containers where the RFC allows. */
function prune(list: Container[], isRoot: boolean): Container[] {
  const out: Container[] = [];
  for (const c of list) {
    c.children = prune(c.children, false);
    if (c.message === null && c.children.length === 0) continue;
    if (c.message === null && (!isRoot || c.children.length === 1)) {
      for (const child of c.children) child.parent = c.parent;
      out.push(...c.children);
      continue;
    }
    out.push(c);
  }
  return out;
}

function sortTree(list: Container[]): void {
  for (const c of list) sortTree(c.children);
  list.sort(compareContainers);
}

export function threadReferences(messages: readonly ThreadMessage[]): ThreadNode[] {
  const byId = new Map<string, Container>();
  const container = (id: string): Container => {
    let c = byId.get(id);
    if (!c) {
      c = { message: null, parent: null, children: [] };
      byId.set(id, c);
    }
    return c;
  };
  const all: Container[] = [];
  // Step 1: link each message's references in order, then the message under its last reference.
  for (const m of [...messages].sort(byDateThenId)) {
    let own: Container;
    const known = m.messageId ? byId.get(m.messageId) : undefined;
    if (m.messageId && (!known || known.message === null)) {
      own = container(m.messageId);
    } else {
      own = { message: null, parent: null, children: [] }; // no or duplicate Message-ID: a fresh identity
    }
    own.message = m;
    all.push(own);
    const refs = m.references.length > 0 ? m.references : m.inReplyTo ? [m.inReplyTo] : [];
    let previous: Container | null = null;
    for (const ref of refs) {
      const c = container(ref);
      if (previous && !c.parent && c !== previous && !isAncestor(c, previous)) link(previous, c);
      previous = c;
    }
    if (previous && previous !== own && !isAncestor(own, previous)) link(previous, own);
    else if (!previous && own.parent) {
      own.parent.children = own.parent.children.filter((c) => c !== own);
      own.parent = null;
    }
  }
  // Step 2: the root set.
  const roots = [...new Set([...byId.values(), ...all])].filter((c) => c.parent === null);
  // Steps 3-4.
  let threads = prune(roots, true);
  // Step 5: sort, then gather roots by base subject.
  sortTree(threads);
  const subjectOf = (c: Container) => containerDate(c)?.subject ?? null;
  const bySubject = new Map<string, Container>();
  for (const c of threads) {
    const { base } = baseSubject(subjectOf(c));
    if (!base) continue;
    const held = bySubject.get(base);
    if (!held || (held.message !== null && c.message === null) || (baseSubject(subjectOf(held)).isReplyOrForward && !baseSubject(subjectOf(c)).isReplyOrForward)) {
      bySubject.set(base, c);
    }
  }
  const merged: Container[] = [];
  for (const c of threads) {
    const { base, isReplyOrForward } = baseSubject(subjectOf(c));
    const target = base ? bySubject.get(base) : undefined;
    if (!target || target === c) {
      merged.push(c);
      continue;
    }
    if (target.message === null && c.message === null) {
      for (const child of c.children) link(target, child);
    } else if (target.message === null) {
      link(target, c);
    } else if (c.message !== null && isReplyOrForward && !baseSubject(subjectOf(target)).isReplyOrForward) {
      link(target, c);
    } else {
      // Neither is a reply to the other: both become children of a new placeholder.
      const holder: Container = { message: null, parent: null, children: [] };
      const at = merged.indexOf(target);
      if (at >= 0) merged[at] = holder;
      else merged.push(holder);
      link(holder, target);
      link(holder, c);
      bySubject.set(base, holder);
    }
  }
  threads = merged.filter((c) => c.parent === null);
  // Step 6: children by date, threads by their first message's date.
  sortTree(threads);
  const toNode = (c: Container): ThreadNode => ({ id: c.message?.id ?? null, children: c.children.map(toNode) });
  return threads.map(toNode);
}

/** `(1 2 3)(4 (5)(6))`: a chain of single children is written flat, siblings each in parentheses. */
export function formatThreads(nodes: readonly ThreadNode[]): string {
  const inner = (node: ThreadNode): string => {
    const parts = node.id === null ? [] : [String(node.id)];
    if (node.children.length === 1) parts.push(inner(node.children[0]!));
    else if (node.children.length > 1) parts.push(node.children.map((c) => `(${inner(c)})`).join(''));
    return parts.join(' ');
  };
  return nodes.map((n) => `(${inner(n)})`).join('');
}

import type { Envelope, EnvelopeAddress, MimeNode } from '../mime/types.js';
import { adjacent, atom, type Value } from './serializer.js';

/**
 * ENVELOPE and BODY/BODYSTRUCTURE values (RFC 9051 §7.5.2, RFC 3501 §7.4.2), built from the stored MIME
 * tree. BODYSTRUCTURE carries the extension data: for multiparts the parameters, disposition, language and
 * location; for single parts the MD5, disposition, language and location. BODY leaves them out.
 */

function addresses(list: EnvelopeAddress[] | null): Value {
  if (!list || list.length === 0) return null;
  return adjacent(list.map((a) => [a.name, a.adl, a.mailbox, a.host]));
}

export function envelopeValue(env: Envelope): Value {
  return [
    env.date,
    env.subject,
    addresses(env.from),
    addresses(env.sender),
    addresses(env.replyTo),
    addresses(env.to),
    addresses(env.cc),
    addresses(env.bcc),
    env.inReplyTo,
    env.messageId,
  ];
}

function params(list: [string, string][]): Value {
  return list.length === 0 ? null : list.flatMap(([name, value]) => [name, value]);
}

function disposition(node: MimeNode): Value {
  return node.disposition ? [node.disposition.type, params(node.disposition.params)] : null;
}

function language(node: MimeNode): Value {
  if (!node.language || node.language.length === 0) return null;
  return node.language.length === 1 ? node.language[0]! : node.language;
}

const upper = (s: string) => s.toUpperCase();
const SPACE = atom(' ');

function isMessage(node: MimeNode): boolean {
  return node.type === 'message' && (node.subtype === 'rfc822' || node.subtype === 'global') && node.children.length === 1;
}

export function bodyStructureValue(node: MimeNode, extensible: boolean): Value {
  if (node.type === 'multipart' && node.children.length > 0) {
    // `1*body SP media-subtype [SP body-ext-mpart]`: the bodies touch, the rest is space separated.
    const items: Value[] = node.children.map((c) => bodyStructureValue(c, extensible));
    const rest: Value[] = [upper(node.subtype)];
    if (extensible) rest.push(params(node.params), disposition(node), language(node), node.location);
    for (const value of rest) items.push(SPACE, value);
    return adjacent(items);
  }
  const fields: Value[] = [
    upper(node.type),
    upper(node.subtype),
    params(node.params),
    node.id,
    node.description,
    upper(node.encoding),
    node.bodyEnd - node.bodyStart,
  ];
  if (isMessage(node)) {
    const inner = node.children[0]!;
    fields.push(node.envelope ? envelopeValue(node.envelope) : envelopeValue(emptyEnvelope), bodyStructureValue(inner, extensible), node.lines);
  } else if (node.type === 'text') fields.push(node.lines);
  if (extensible) fields.push(node.md5, disposition(node), language(node), node.location);
  return fields;
}

const emptyEnvelope: Envelope = {
  date: null,
  subject: null,
  from: null,
  sender: null,
  replyTo: null,
  to: null,
  cc: null,
  bcc: null,
  inReplyTo: null,
  messageId: null,
};


/**
 * The MIME structure of a stored message, computed once at delivery and sealed with the message (it is
 * derived from headers). Offsets are byte offsets into the raw RFC 5322 message, so IMAP BODY[section]
 * and BODYSTRUCTURE are served without re-parsing. Everything here is JSON-serialisable.
 */

/** An IMAP ENVELOPE address (RFC 9051 §7.5.2): group syntax uses mailbox/host nulls as in the RFC. */
export interface EnvelopeAddress {
  name: string | null;
  adl: null;
  mailbox: string | null;
  host: string | null;
}

/** Header field values kept raw (encoded words not decoded), as IMAP ENVELOPE returns them. */
export interface Envelope {
  date: string | null;
  subject: string | null;
  from: EnvelopeAddress[] | null;
  sender: EnvelopeAddress[] | null;
  replyTo: EnvelopeAddress[] | null;
  to: EnvelopeAddress[] | null;
  cc: EnvelopeAddress[] | null;
  bcc: EnvelopeAddress[] | null;
  inReplyTo: string | null;
  messageId: string | null;
}

export interface MimeNode {
  /** Offset of the first header byte of this part. */
  headerStart: number;
  /** Offset of the first body byte (just after the blank line ending the header). */
  bodyStart: number;
  /** Offset just after the last body byte. */
  bodyEnd: number;
  type: string; // lower-case, e.g. 'text'
  subtype: string; // lower-case, e.g. 'plain'
  params: [string, string][]; // content-type parameters, names lower-case, RFC 2231 continuations joined
  id: string | null;
  description: string | null;
  encoding: string; // content-transfer-encoding, lower-case, default '7bit'
  md5: string | null;
  disposition: { type: string; params: [string, string][] } | null;
  language: string[] | null;
  location: string | null;
  /** Body size in lines, for text/* and message/rfc822 parts. */
  lines: number;
  /** Multipart children; for message/rfc822, exactly one child: the encapsulated message. */
  children: MimeNode[];
  /** For message/rfc822 parts: the envelope of the encapsulated message. */
  envelope?: Envelope;
}

export interface MessageMeta {
  version: 1;
  envelope: Envelope;
  mime: MimeNode;
  /** Decoded header values used for threading and display. */
  thread: {
    messageId: string | null;
    inReplyTo: string | null;
    references: string[];
    subject: string | null;
  };
  /**
   * The values (encoded words decoded) of the top-level header fields SEARCH's FROM, TO, CC, BCC and SUBJECT read,
   * by lower-case field name, `[]` for a field the message lacks; a field whose values are longer than
   * `SEARCH_HEADER_LIMIT` is left out (SEARCH then reads the message). Absent in metadata from before it was kept.
   */
  searchHeaders?: Partial<Record<SearchHeaderName, string[]>>;
}

export const SEARCH_HEADER_NAMES = ['from', 'to', 'cc', 'bcc', 'subject'] as const;
export type SearchHeaderName = (typeof SEARCH_HEADER_NAMES)[number];
/** Characters of one field's values kept for SEARCH in the metadata (a long recipient list is read from the message). */
export const SEARCH_HEADER_LIMIT = 2048;

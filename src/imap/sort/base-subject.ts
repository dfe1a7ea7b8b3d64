import { decodeWords } from '../../mime/encoded-words.js';

/**
 * The base subject of RFC 5256 §2.1, used by SORT SUBJECT and by threading: encoded words decoded, white
 * space collapsed, then `Re:`/`Fw:`/`Fwd:` prefixes, `[blob]` prefixes, `(fwd)` trailers and `[fwd: …]`
 * wrappers removed until nothing changes. Compared case-insensitively (i;unicode-casemap, approximated by
 * Unicode lower case after NFC).
 */

const BLOB = '\\[[^[\\]]*\\]';
const LEADER = new RegExp(`^((${BLOB})\\s*)*(re|fwd?)\\s*(${BLOB})?:`, 'i');
const BLOB_PREFIX = new RegExp(`^${BLOB}\\s*`);
const TRAILER = /(\s*\(fwd\))+$/i;

export interface BaseSubject {
  base: string;
  /** The subject had a reply or forward marker (THREAD=ORDEREDSUBJECT and REFERENCES use it). */
  isReplyOrForward: boolean;
}

export function baseSubject(raw: string | null): BaseSubject {
  let s = decodeWords(raw ?? '')
    .replace(/[\t\r\n ]+/g, ' ')
    .trim();
  let marked = false;
  for (;;) {
    // (2) trailers
    for (;;) {
      const before = s;
      s = s.replace(TRAILER, '').trim();
      if (s === before) break;
      marked = true;
    }
    // (3)-(5) leaders and blobs, until neither applies
    for (;;) {
      const before = s;
      const leader = LEADER.exec(s);
      if (leader) {
        s = s.slice(leader[0].length).trim();
        marked = true;
      } else {
        const blob = BLOB_PREFIX.exec(s);
        if (blob && blob[0].length < s.length) s = s.slice(blob[0].length).trim();
      }
      if (s === before) break;
    }
    // (6) [fwd: subject]
    const fwd = /^\[fwd:(.*)\]$/i.exec(s);
    if (!fwd) break;
    s = fwd[1]!.trim();
    marked = true;
  }
  return { base: s.normalize('NFC').toLowerCase(), isReplyOrForward: marked };
}

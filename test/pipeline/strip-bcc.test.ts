import { describe, expect, it } from 'vitest';
import { stripBcc } from '../../src/pipeline/strip-bcc.js';

describe('strip-bcc stage', () => {
  it('removes Bcc fields with their folded lines, and nothing else', () => {
    const raw = 'From: a@h.test\r\nBCC: secret@h.test,\r\n  other@h.test\r\nTo: b@h.test\r\nbcc:x@h.test\r\nSubject: s\r\n\r\nBcc: in the body stays\r\n';
    expect(stripBcc(Buffer.from(raw)).toString()).toBe('From: a@h.test\r\nTo: b@h.test\r\nSubject: s\r\n\r\nBcc: in the body stays\r\n');
  });

  it('handles LF-only messages, header-only messages, and leaves others byte-identical', () => {
    expect(stripBcc(Buffer.from('Bcc: x\nTo: y\n\nbody')).toString()).toBe('To: y\n\nbody');
    expect(stripBcc(Buffer.from('To: y\r\nBcc: z')).toString()).toBe('To: y\r\n');
    const untouched = Buffer.from('To: y\r\nX-Bcc-Note: keep\r\n\r\nbody');
    expect(stripBcc(untouched)).toBe(untouched);
    expect(stripBcc(Buffer.from('\r\nBcc: body only')).toString()).toBe('\r\nBcc: body only');
  });
});

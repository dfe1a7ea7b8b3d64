import { describe, expect, it } from 'vitest';
import { baseSubject } from '../../src/imap/sort/base-subject.js';
import { formatThreads, threadReferences, type ThreadMessage } from '../../src/imap/sort/thread.js';

describe('base subject (RFC 5256 §2.1)', () => {
  it.each([
    ['Re: hello', 'hello', true],
    ['RE: Fwd: re:hello', 'hello', true],
    ['[SPAM] Re: [liste] hello', 'hello', true],
    ['hello (fwd)', 'hello', true],
    ['[Fwd: Re: hello]', 'hello', true],
    ['  hello   world  ', 'hello world', false],
    ['[résultats]', '[résultats]', false],
    ['=?UTF-8?Q?Re=3A_R=C3=A9SULTATS?=', 'résultats', true],
    ['', '', false],
  ])('%j → %j', (raw, base, marked) => {
    expect(baseSubject(raw)).toEqual({ base, isReplyOrForward: marked });
  });
});

const msg = (id: number, over: Partial<ThreadMessage>): ThreadMessage => ({
  id,
  date: id * 1000,
  messageId: `<${id}@t>`,
  inReplyTo: null,
  references: [],
  subject: `sujet ${id}`,
  ...over,
});

describe('THREAD=REFERENCES', () => {
  it('nests by References, promotes a lone child of a missing parent, keeps siblings of a missing parent under a placeholder', () => {
    const threads = threadReferences([
      msg(1, {}),
      msg(2, { references: ['<1@t>'] }),
      msg(3, { references: ['<1@t>'] }),
      msg(4, { references: ['<gone@t>'] }),
      msg(5, { references: ['<lost@t>'] }),
      msg(6, { references: ['<lost@t>'] }),
    ]);
    expect(formatThreads(threads)).toBe('(1 (2)(3))(4)((5)(6))');
  });

  it('survives reference loops and duplicate Message-IDs', () => {
    const threads = threadReferences([
      msg(1, { references: ['<2@t>'] }),
      msg(2, { references: ['<1@t>'] }),
      msg(3, { messageId: '<1@t>' }),
      msg(4, { messageId: null, inReplyTo: '<3@t>' }),
    ]);
    const ids = formatThreads(threads).match(/\d+/g)!.map(Number).sort();
    expect(ids).toEqual([1, 2, 3, 4]);
  });

  it('merges threads by base subject: a reply joins the original, two originals share a placeholder', () => {
    const threads = threadReferences([
      msg(1, { subject: 'Bilan' }),
      msg(2, { subject: 'Re: Bilan' }),
      msg(3, { subject: 'Autre' }),
      msg(4, { subject: 'Autre' }),
    ]);
    expect(formatThreads(threads)).toBe('(1 2)((3)(4))');
  });
});

import { describe, expect, it } from 'vitest';
import { decodeWords } from '../../src/mime/encoded-words.js';
import { paramValue, parseStructured } from '../../src/mime/params.js';

describe('parseStructured', () => {
  it('parses a content type with quoted and unquoted params and comments', () => {
    expect(parseStructured('Text/Plain; charset="UTF-8" (a comment); format=flowed')).toEqual({
      value: 'text/plain',
      params: [
        ['charset', 'UTF-8'],
        ['format', 'flowed'],
      ],
    });
  });

  it('keeps ; and = inside quoted values', () => {
    expect(parseStructured('attachment; filename="a;b=c.pdf"').params).toEqual([['filename', 'a;b=c.pdf']]);
  });

  it('joins RFC 2231 continuations', () => {
    const p = parseStructured('application/pdf; name*0="compte rendu "; name*1="2024.pdf"');
    expect(p.params).toEqual([['name', 'compte rendu 2024.pdf']]);
    expect(paramValue(p.params, 'name')).toBe('compte rendu 2024.pdf');
  });

  it('joins extended continuations into one ASCII extended parameter', () => {
    const p = parseStructured("attachment; filename*0*=utf-8''%C3%A9t; filename*1*=%C3%A9; filename*2=\" x.pdf\"");
    expect(p.params).toEqual([['filename*', "utf-8''%C3%A9t%C3%A9%20x.pdf"]]);
    expect(paramValue(p.params, 'filename')).toBe('été x.pdf');
  });

  it('decodes a single extended value', () => {
    const p = parseStructured("attachment; filename*=iso-8859-1'fr'r%E9sum%E9.txt");
    expect(paramValue(p.params, 'filename')).toBe('résumé.txt');
  });

  it('decodes encoded words in plain parameters for display', () => {
    const p = parseStructured('attachment; filename="=?UTF-8?B?w6l0w6kucGRm?="');
    expect(paramValue(p.params, 'filename')).toBe('été.pdf');
  });
});

describe('decodeWords', () => {
  it('decodes B and Q words and drops white space between adjacent words', () => {
    expect(decodeWords('=?UTF-8?Q?Compte_rendu_?= =?UTF-8?B?w6l0w6k=?= ok')).toBe('Compte rendu été ok');
  });

  it('joins a character split across words', () => {
    expect(decodeWords('=?UTF-8?Q?=C3?= =?UTF-8?Q?=A9?=')).toBe('é');
  });

  it('leaves plain text and unknown charsets readable', () => {
    expect(decodeWords('plain text')).toBe('plain text');
    expect(decodeWords('=?x-unknown?Q?abc?=')).toBe('abc');
  });
});

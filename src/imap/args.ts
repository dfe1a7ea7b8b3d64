import { parseSequenceSet, type SeqRange } from './sequence.js';
import { ImapSyntaxError, type Token } from './tokenizer.js';

/**
 * Typed reading of a command's argument tokens. Command specs describe their grammar with these readers;
 * any mismatch throws `ImapSyntaxError`, which the dispatcher answers with BAD.
 */
export class Args {
  #i = 0;

  constructor(private readonly tokens: readonly Token[]) {}

  peek(): Token | undefined {
    return this.tokens[this.#i];
  }

  get remaining(): number {
    return this.tokens.length - this.#i;
  }

  #next(what: string): Token {
    const token = this.tokens[this.#i++];
    if (!token) throw new ImapSyntaxError(`Missing ${what}`);
    return token;
  }

  /** A bare atom (no section). */
  atom(what: string): string {
    const t = this.#next(what);
    if (t.type !== 'atom' || t.section) throw new ImapSyntaxError(`Expected ${what}`);
    return t.value;
  }

  /** An atom or a string, as bytes. */
  astring(what: string): Buffer {
    const t = this.#next(what);
    if (t.type === 'string') return t.value;
    if (t.type === 'atom' && !t.section) return Buffer.from(t.value, 'utf8');
    throw new ImapSyntaxError(`Expected ${what}`);
  }

  /** An atom or a string, as UTF-8 text. */
  text(what: string): string {
    return this.astring(what).toString('utf8');
  }

  /** A string (quoted or literal) only. */
  string(what: string): Buffer {
    const t = this.#next(what);
    if (t.type !== 'string') throw new ImapSyntaxError(`Expected ${what} as a string`);
    return t.value;
  }

  list(what: string): Token[] {
    const t = this.#next(what);
    if (t.type !== 'list') throw new ImapSyntaxError(`Expected ${what} in parentheses`);
    return t.items;
  }

  sequenceSet(): SeqRange[] {
    return parseSequenceSet(this.atom('sequence set'));
  }

  /** Any token, for grammars that branch on its shape. */
  token(what: string): Token {
    return this.#next(what);
  }

  end(): void {
    if (this.#i < this.tokens.length) throw new ImapSyntaxError('Too many arguments');
  }
}

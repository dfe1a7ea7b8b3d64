/**
 * Incremental IMAP command framing over bytes (RFC 9051 §2.2, RFC 7888 literals). Pure: no sockets.
 *
 * Bytes go in with `push`; `next()` returns the next event or null when more bytes are needed. A command is
 * returned as its frame: the line pieces and the literal data between them (tokenising is
 * `tokenizer.ts`'s job). Memory is bounded: the line bytes of one command never exceed `maxLineLength`, and
 * each literal is accepted only when `literalPolicy` allows its size, decided before its bytes arrive.
 *
 * Refusals keep the stream in step with the client: an over-long line is discarded up to its line break
 * (and through any non-synchronising literal announced at its end); a refused synchronising literal ends
 * the command at once (the client waits for "+" and gets the tagged answer instead); a refused
 * non-synchronising literal is read and thrown away. Only an announced size that cannot be represented
 * makes the reader give up (`fatal`, the session answers BYE).
 */

export interface LiteralRequest {
  /** The command's tag, or null when it is not a valid tag. */
  tag: string | null;
  /** Upper-case command name, `UID FETCH` style for UID commands; '' when unreadable. */
  command: string;
  size: number;
  /** Synchronising (`{n}`, needs a "+" continuation) or not (`{n+}`). */
  sync: boolean;
  /** Literal bytes already accepted for this command. */
  received: number;
}

export type Refusal = { status: 'BAD' | 'NO'; code?: string; text: string };
export type LiteralPolicy = (request: LiteralRequest) => Refusal | null;

export interface CommandFrame {
  tag: string;
  command: string;
  /** Line pieces (line breaks removed) and literal data, alternating: line, literal, line, ... */
  segments: Buffer[];
  /** Offset in `segments[0]` where the arguments begin (after the command name and one space). */
  argsOffset: number;
}

export type ReaderEvent =
  | { kind: 'command'; frame: CommandFrame }
  /** A synchronising literal was accepted: the session sends a "+" continuation. */
  | { kind: 'continue' }
  /** A command was dropped (line too long, literal refused, invalid tag); the reader is in step again. */
  | { kind: 'refused'; tag: string | null; command: string; refusal: Refusal }
  /** A raw line, read in line mode (AUTHENTICATE responses). */
  | { kind: 'line'; line: Buffer }
  /** The stream cannot be followed any more. */
  | { kind: 'fatal'; text: string };

type State =
  | { mode: 'line' }
  | { mode: 'literal'; remaining: number; parts: Buffer[] }
  | { mode: 'discard-line' }
  | { mode: 'discard-literal'; remaining: number };

const LF = 0x0a;
const TAIL = 32;
const LITERAL_MARK = /\{(\d{1,20})(\+)?\}$/;
const TAG = /^[^\x00-\x20(){%*"\\+\x7f-\xff]+$/;

export function isValidTag(tag: string): boolean {
  return TAG.test(tag);
}

function stripLineBreak(line: Buffer): Buffer {
  let end = line.length;
  if (end > 0 && line[end - 1] === LF) end--;
  if (end > 0 && line[end - 1] === 0x0d) end--;
  return line.subarray(0, end);
}

/** Tag and command name from the start of a command's first line. */
export function commandHead(first: Buffer): { tag: string | null; command: string; argsOffset: number } {
  const text = first.toString('latin1');
  const m = /^(\S+) (\S+)(?: (\S+))?/.exec(text);
  const tagOnly = /^(\S+)/.exec(text)?.[1] ?? '';
  const tag = isValidTag(tagOnly) ? tagOnly : null;
  if (!m || tag === null) return { tag, command: '', argsOffset: text.length };
  let command = m[2]!.toUpperCase();
  let length = m[1]!.length + 1 + m[2]!.length;
  if (command === 'UID' && m[3]) {
    command = `UID ${m[3].toUpperCase()}`;
    length += 1 + m[3].length;
  }
  return { tag, command, argsOffset: Math.min(text.length, length + 1) };
}

export class CommandReader {
  #chunks: Buffer[] = [];
  #buffered = 0;
  #state: State = { mode: 'line' };
  /** The current line's bytes so far (only while reading a line that is not being discarded). */
  #line: Buffer[] = [];
  #lineLength = 0;
  /** Line bytes of the whole command so far (all its lines). */
  #commandLine = 0;
  #segments: Buffer[] = [];
  #literalBytes = 0;
  #head: { tag: string | null; command: string } | null = null;
  #tail = Buffer.alloc(0);
  #pendingRefusal: Refusal | null = null;
  #lineMode = false;

  constructor(
    private readonly maxLineLength: number,
    private readonly literalPolicy: LiteralPolicy,
  ) {}

  /** Bytes received and not yet consumed (the session pauses the socket above a high-water mark). */
  get buffered(): number {
    return this.#buffered;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
  }

  /** Drops every buffered byte and partial command (after STARTTLS: nothing sent in clear may be used). */
  reset(): void {
    this.#chunks = [];
    this.#buffered = 0;
    this.#startCommand();
    this.#state = { mode: 'line' };
    this.#lineMode = false;
  }

  /** The next event is one raw line (for SASL exchanges), not a command. */
  expectLine(): void {
    this.#lineMode = true;
  }

  next(): ReaderEvent | null {
    for (;;) {
      if (this.#buffered === 0) return null;
      const event = this.#step();
      if (event) return event;
    }
  }

  #startCommand(): void {
    this.#line = [];
    this.#lineLength = 0;
    this.#commandLine = 0;
    this.#segments = [];
    this.#literalBytes = 0;
    this.#head = null;
    this.#tail = Buffer.alloc(0);
    this.#pendingRefusal = null;
  }

  /** Takes up to `max` bytes from the front of the input. */
  #take(max: number): Buffer {
    const first = this.#chunks[0]!;
    if (first.length <= max) {
      this.#chunks.shift();
      this.#buffered -= first.length;
      return first;
    }
    this.#chunks[0] = first.subarray(max);
    this.#buffered -= max;
    return first.subarray(0, max);
  }

  /** Takes bytes up to and including the next LF from the front chunk; `done` when the LF was found. */
  #takeLinePiece(): { piece: Buffer; done: boolean } {
    const first = this.#chunks[0]!;
    const lf = first.indexOf(LF);
    return lf < 0 ? { piece: this.#take(first.length), done: false } : { piece: this.#take(lf + 1), done: true };
  }

  #step(): ReaderEvent | null {
    const state = this.#state;
    switch (state.mode) {
      case 'line':
        return this.#stepLine();
      case 'literal': {
        const piece = this.#take(state.remaining);
        state.parts.push(piece);
        state.remaining -= piece.length;
        if (state.remaining === 0) {
          this.#segments.push(Buffer.concat(state.parts));
          this.#state = { mode: 'line' };
        }
        return null;
      }
      case 'discard-literal': {
        const piece = this.#take(Math.min(state.remaining, this.#chunks[0]!.length));
        state.remaining -= piece.length;
        if (state.remaining === 0) this.#state = { mode: 'discard-line' };
        return null;
      }
      case 'discard-line':
        return this.#stepDiscard();
    }
  }

  #stepLine(): ReaderEvent | null {
    const { piece, done } = this.#takeLinePiece();
    this.#line.push(piece);
    this.#lineLength += piece.length;
    const limit = this.#lineMode ? this.maxLineLength : this.maxLineLength - this.#commandLine;
    if (this.#lineLength > limit + 2 || (!done && this.#lineLength > limit)) {
      const line = Buffer.concat(this.#line);
      if (!this.#head) this.#head = commandHead(line);
      this.#tail = line.subarray(Math.max(0, line.length - TAIL));
      this.#line = [];
      this.#pendingRefusal = { status: 'BAD', text: this.#lineMode ? 'Line too long' : 'Command line too long' };
      this.#state = { mode: 'discard-line' };
      return done ? this.#endDiscardedLine() : null;
    }
    if (!done) return null;
    const line = stripLineBreak(Buffer.concat(this.#line));
    this.#line = [];
    this.#lineLength = 0;
    if (this.#lineMode) {
      this.#lineMode = false;
      return { kind: 'line', line };
    }
    if (this.#segments.length === 0 && line.length === 0) return null; // empty lines between commands
    this.#commandLine += line.length;
    if (!this.#head) this.#head = commandHead(line);
    const mark = LITERAL_MARK.exec(line.toString('latin1', Math.max(0, line.length - 24)));
    if (!mark) {
      this.#segments.push(line);
      return this.#finishCommand();
    }
    const size = Number(mark[1]);
    const sync = mark[2] !== '+';
    const head = this.#head;
    if (!Number.isSafeInteger(size)) return { kind: 'fatal', text: 'Literal size out of range' };
    const refusal =
      head.tag === null
        ? { status: 'BAD' as const, text: 'Invalid tag' }
        : this.literalPolicy({ tag: head.tag, command: head.command, size, sync, received: this.#literalBytes });
    if (refusal) {
      if (sync) {
        this.#startCommand();
        return { kind: 'refused', tag: head.tag, command: head.command, refusal };
      }
      this.#pendingRefusal = refusal;
      this.#state = size > 0 ? { mode: 'discard-literal', remaining: size } : { mode: 'discard-line' };
      return null;
    }
    this.#segments.push(line);
    this.#literalBytes += size;
    if (size > 0) this.#state = { mode: 'literal', remaining: size, parts: [] };
    else this.#segments.push(Buffer.alloc(0));
    return sync ? { kind: 'continue' } : null;
  }

  #stepDiscard(): ReaderEvent | null {
    const { piece, done } = this.#takeLinePiece();
    this.#tail = Buffer.concat([this.#tail, piece]).subarray(-TAIL - 2);
    return done ? this.#endDiscardedLine() : null;
  }

  /** At the line break of a discarded line: follow an announced literal, or end the command. */
  #endDiscardedLine(): ReaderEvent | null {
    const tail = stripLineBreak(this.#tail).toString('latin1');
    this.#tail = Buffer.alloc(0);
    const mark = LITERAL_MARK.exec(tail);
    const head = this.#head ?? { tag: null, command: '' };
    const refusal = this.#pendingRefusal ?? { status: 'BAD', text: 'Command refused' };
    const wasLineMode = this.#lineMode;
    if (mark && !wasLineMode) {
      const size = Number(mark[1]);
      if (!Number.isSafeInteger(size)) return { kind: 'fatal', text: 'Literal size out of range' };
      if (mark[2] === '+') {
        this.#state = size > 0 ? { mode: 'discard-literal', remaining: size } : { mode: 'discard-line' };
        return null;
      }
    }
    this.#state = { mode: 'line' };
    this.#lineMode = false;
    this.#startCommand();
    return { kind: 'refused', tag: head.tag, command: head.command, refusal };
  }

  #finishCommand(): ReaderEvent {
    const head = this.#head!;
    const segments = this.#segments;
    const refusal = this.#pendingRefusal;
    this.#startCommand();
    if (refusal) return { kind: 'refused', tag: head.tag, command: head.command, refusal };
    if (head.tag === null) return { kind: 'refused', tag: null, command: head.command, refusal: { status: 'BAD', text: 'Invalid tag' } };
    const { argsOffset } = commandHead(segments[0]!);
    return { kind: 'command', frame: { tag: head.tag, command: head.command, segments, argsOffset } };
  }
}

import { readdirSync, readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { CertificateAuthenticator } from '../../src/accounts/certificate-login.js';
import type { Config } from '../../src/config/schema.js';
import { ENGINES } from '../helpers/engines.js';
import { ImapLineClient, startImapServer, USER, type ImapTestServer } from './harness.js';

/**
 * Conformance conversations as data (after Dovecot's imaptest scripts). Each file in scenarios/ has a header
 * (`listener:`, `state:`, `limits:`, `quota:`, `deliver:`, `client-certificates: requested` lines), a `---`
 * line, then the conversation:
 *
 *   C: <line>      sent with CRLF ($USER, $PASS, $PLAIN and {{x*N}} are expanded)
 *   S: <line>      the next server line, exactly
 *   S~ <regex>     the next server line, matching the regular expression in full; its named groups
 *                  (`(?<uv>\d+)`) are remembered, and `${uv}` in later C:, S: and S~ lines stands for them
 *   S: (closed)    the server has closed the connection
 *   ! connection <name>  switch to another connection (the first is `1`), opening it on first use: its
 *                  greeting is consumed and it is brought to the header's `state:` like the first
 *   ! starttls     upgrade the connection to TLS (after the server's OK to STARTTLS)
 *   ! compress     compress both directions with DEFLATE (after the server's OK to COMPRESS)
 *   ! sleep <ms>   wait
 *
 * The server lines expected after a C: line are read right after it is sent, so a literal's lines can be
 * sent as several C: lines. Server lines are compared as UTF-8 when the expected line has non-ASCII text,
 * byte for byte (Latin-1) otherwise. Lines starting with # are comments. A new case is a new file.
 */

const DIR = new URL('./scenarios/', import.meta.url);
const FIXTURES = new URL('../fixtures/email/', import.meta.url);

interface Scenario {
  listener: 'plain' | 'tls';
  state: string;
  limits: Partial<Config['imap']>;
  quota: Partial<Config['quota']>;
  /** The listeners ask for client certificates (AUTHENTICATE EXTERNAL; this client presents none). */
  clientCertificates: boolean;
  deliver: { file: string; flags: string[] }[];
  steps: string[];
}

function parseScenario(text: string): Scenario {
  const [head = '', body = ''] = text.split(/^---$/m);
  const scenario: Scenario = { listener: 'tls', state: 'not-authenticated', limits: {}, quota: {}, clientCertificates: false, deliver: [], steps: [] };
  for (const line of head.split('\n')) {
    const m = /^([\w-]+):\s*(.*)$/.exec(line.trim());
    if (!m) continue;
    const [, key, value = ''] = m;
    if (key === 'listener') scenario.listener = value === 'plain' ? 'plain' : 'tls';
    else if (key === 'state') scenario.state = value;
    else if (key === 'limits' || key === 'quota') {
      for (const pair of value.split(/\s+/).filter(Boolean)) {
        const [k, v] = pair.split('=');
        (scenario[key] as Record<string, number>)[k!] = Number(v);
      }
    } else if (key === 'client-certificates') {
      scenario.clientCertificates = value === 'requested';
    } else if (key === 'deliver') {
      const [file = '', ...flags] = value.split(/\s+/);
      scenario.deliver.push({ file, flags });
    }
  }
  scenario.steps = body.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));
  return scenario;
}

function expand(line: string): string {
  return line
    .replaceAll('$USER', USER.address)
    .replaceAll('$PASS', USER.password)
    .replaceAll('$PLAIN', Buffer.from(`\0${USER.address}\0${USER.password}`).toString('base64'))
    .replace(/\{\{(.)\*(\d+)\}\}/g, (_, ch: string, n: string) => ch.repeat(Number(n)));
}

async function run(server: ImapTestServer, scenario: Scenario, name: string): Promise<void> {
  const connect = () => ImapLineClient.connect(scenario.listener === 'tls' ? server.ports.tls : server.ports.plain, { tls: scenario.listener === 'tls' });
  const clients = new Map<string, ImapLineClient>([['1', await connect()]]);
  let client = clients.get('1')!;
  try {
    const steps = scenario.steps;
    const vars = new Map<string, string>();
    const withVars = (line: string) => line.replace(/\$\{(\w+)\}/g, (whole, name: string) => vars.get(name) ?? whole);
    let i = 0;
    const expectLines = async (context: string) => {
      while (i < steps.length && (steps[i]!.startsWith('S:') || steps[i]!.startsWith('S~'))) {
        const step = steps[i++]!;
        const want = withVars(step.slice(2).replace(/^ /, ''));
        if (step.startsWith('S:') && want === '(closed)') {
          await client.closedByServer();
          continue;
        }
        const where = `${name}: after ${JSON.stringify(context)}`;
        const raw = await client.line().catch((err: Error) => {
          throw new Error(`${where}, expecting ${JSON.stringify(want)}: ${err.message}`);
        });
        const got = /[^\x00-\x7f]/.test(want) ? Buffer.from(raw, 'latin1').toString('utf8') : raw;
        if (step.startsWith('S~')) {
          const m = new RegExp(`^(?:${want})$`).exec(got);
          expect(got, where).toMatch(new RegExp(`^(?:${want})$`));
          for (const [name, value] of Object.entries(m?.groups ?? {})) vars.set(name, value);
        } else expect(got, where).toBe(want);
      }
    };
    const setUp = async (c: ImapLineClient) => {
      if (scenario.state.startsWith('authenticated') || scenario.state.startsWith('selected')) await c.login();
      if (scenario.state.startsWith('selected')) {
        const [, mailbox = 'INBOX'] = scenario.state.split(/\s+/);
        const lines = await c.command('S0', `SELECT ${mailbox}`);
        expect(lines[lines.length - 1], `${name}: setup SELECT`).toMatch(/^S0 OK/);
      }
    };
    // The greeting: compared when the conversation starts with S: lines, else just consumed.
    if (steps[0]?.startsWith('S')) await expectLines('greeting');
    else await client.line();
    await setUp(client);
    while (i < steps.length) {
      const step = steps[i++]!;
      if (step.startsWith('C:')) {
        const line = expand(withVars(step.slice(2).replace(/^ /, '')));
        client.send(line);
        await expectLines(line.slice(0, 80));
      } else if (step.startsWith('S')) {
        i--;
        await expectLines(steps[i - 1] ?? 'start');
      } else if (step.startsWith('! connection')) {
        const id = step.split(/\s+/)[2] ?? '';
        let next = clients.get(id);
        if (!next) {
          next = await connect();
          clients.set(id, next);
          await next.line();
          await setUp(next);
        }
        client = next;
      } else if (step.startsWith('! starttls')) await client.startTls();
      else if (step.startsWith('! compress')) client.compress();
      else if (step.startsWith('! sleep')) await new Promise((r) => setTimeout(r, Number(step.split(/\s+/)[2])));
      else throw new Error(`${name}: unexpected step ${JSON.stringify(step)}`);
    }
    await new Promise((r) => setTimeout(r, 30));
    for (const [id, c] of clients) expect(c.pending, `${name}: unexpected data at the end on connection ${id}`).toBe('');
  } finally {
    for (const c of clients.values()) c.close();
  }
}

const files = readdirSync(DIR).filter((f) => f.endsWith('.txt')).sort();

describe.each(ENGINES)('IMAP conversations (%s)', (engine) => {
  let server: ImapTestServer | null = null;
  afterEach(async () => {
    await server?.dispose();
    server = null;
  });

  it.each(files)('%s', async (file) => {
    const scenario = parseScenario(readFileSync(new URL(file, DIR), 'utf8'));
    server = await startImapServer(engine, scenario.limits, undefined, {
      quota: scenario.quota,
      ...(scenario.clientCertificates
        ? { clientAuth: (store) => ({ ca: [], certificates: new CertificateAuthenticator(store, { list: async () => [] }, { anchors: [], intermediates: [] }) }) }
        : {}),
    });
    for (const { file: fixture, flags } of scenario.deliver) {
      await server.deliver(readFileSync(new URL(fixture, FIXTURES)), { flags });
    }
    await run(server, scenario, file);
  });
});

import nodemailer from 'nodemailer';

/**
 * Reading a real `mss` process from a test: waiting for a condition, and what `mss init` / `mss start` print
 * (demo passwords, listener ports); and submitting a message to it.
 */

/** Waits until `check()` holds, polling with `poll` (every 50 ms) or every 10 ms; fails after `timeoutMs`. */
export async function until(check: () => boolean, what: string, timeoutMs: number, poll?: () => Promise<unknown>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    if (poll) await poll();
    await new Promise((r) => setTimeout(r, poll ? 50 : 10));
  }
}

/** The passwords `mss init` printed, by address. */
export function printedPasswords(out: string): Map<string, string> {
  const passwords = new Map<string, string>();
  for (const line of out.split('\n').filter((l) => l.includes('  password: '))) {
    const [address, password] = line.trim().split('  password: ') as [string, string];
    passwords.set(address, password);
  }
  return passwords;
}

/** The port of a loopback listener `mss start` printed (`listening  imap (TLS)  127.0.0.1:port`). */
export function listenerPort(out: string, protocol: string): number {
  const m = new RegExp(`${protocol.replace(/[()]/g, '\\$&')}\\s+127\\.0\\.0\\.1:(\\d+)`).exec(out);
  if (!m) throw new Error(`no ${protocol} listener in ${out}`);
  return Number(m[1]);
}

/** Submits a short report from `from` to `to` through a running server's submission port (STARTTLS, login). */
export async function submitReport(port: number, ca: string | Buffer, from: string, password: string, to: string): Promise<string[]> {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port, requireTLS: true, auth: { user: from, pass: password }, tls: { ca, servername: 'localhost' } });
  try {
    const info = await transport.sendMail({ from, to, subject: 'Compte rendu', text: 'Résultats normaux.\n' });
    return info.accepted.map(String);
  } finally {
    transport.close();
  }
}

import { describe, expect, it } from 'vitest';
import { OutboundStage } from '../../src/pipeline/outbound.js';
import type { SecurityContext } from '../../src/pipeline/security-context.js';
import type { QueueSealer } from '../../src/queue/envelope.js';
import { SmtpQueueTransport } from '../../src/smtp/outbound.js';
import { federationConfigSchema, retryDelayMs } from '../../src/smtp/outbound-config.js';
import type { Certificate } from '../../src/crypto/cms/certificate.js';
import type { MailboxRow, QueueItem } from '../../src/store/types.js';

/** The pure parts of outbound mail: routes, backoff, the encryption policy per message. */

const config = federationConfigSchema.parse({
  routes: { 'Peer.Test': '127.0.0.1:2525' },
  mxPort: 2526,
  encrypt: 'preferred',
});

function transport(mx: (domain: string) => Promise<{ exchange: string; priority: number }[]>) {
  return new SmtpQueueTransport({
    config,
    hostname: 'mx.h.test',
    client: { key: '', cert: '' },
    trust: { lookup: async () => [], anchors: async () => [] },
    sealer: {} as QueueSealer,
    resolveMx: mx,
  });
}

describe('outbound routing and policy', () => {
  it('routes by the static table (any case), else by MX preference, else to the domain itself', async () => {
    const t = transport(async (d) => {
      if (d === 'mx.test') return [{ exchange: 'b.mx.test', priority: 20 }, { exchange: 'a.mx.test', priority: 10 }];
      throw Object.assign(new Error('no MX'), { code: 'ENODATA' });
    });
    expect(await t.hops('peer.test')).toEqual([{ host: '127.0.0.1', port: 2525 }]);
    expect(await t.hops('mx.test')).toEqual([{ host: 'a.mx.test', port: 2526 }, { host: 'b.mx.test', port: 2526 }]);
    expect(await t.hops('bare.test')).toEqual([{ host: 'bare.test', port: 2526 }]);
    // RFC 7505: a null MX says the domain takes no mail; Node reports its root exchange as an empty name.
    for (const exchange of ['', '.']) expect(await transport(async () => [{ exchange, priority: 0 }]).hops('nomail.test')).toEqual([]);
    // A DNS failure other than "no such record" is temporary: the attempt fails and is retried.
    await expect(transport(async () => Promise.reject(Object.assign(new Error('timeout'), { code: 'ETIMEOUT' }))).hops('x.test')).rejects.toThrow('timeout');
  });

  it('fails a delivery at once, without retrying, to a trusted domain that publishes a null MX', async () => {
    const t = new SmtpQueueTransport({
      config,
      hostname: 'mx.h.test',
      client: { key: '', cert: '' },
      trust: {
        lookup: async () => [{ name: 'nomail.test', description: '', operatorDn: 'CN=mx.nomail.test', responsableContact: '', supportContact: '', updatedAt: 0 }],
        // Never read before routing: a null MX stops the attempt before any connection.
        anchors: async () => [{} as Certificate],
      },
      sealer: {} as QueueSealer,
      resolveMx: async () => [{ exchange: '', priority: 0 }],
    });
    const item = { id: 'q1', destination: 'nomail.test' } as QueueItem;
    expect(await t.deliver({ item, idempotencyKey: 'k', signal: new AbortController().signal })).toEqual({
      kind: 'failed',
      reason: 'nomail.test publishes a null MX (RFC 7505): it accepts no mail',
    });
  });

  it('refuses a malformed route in the configuration', () => {
    expect(() => federationConfigSchema.parse({ routes: { 'p.test': 'nohost' } })).toThrow(/host:port/);
    expect(() => federationConfigSchema.parse({ routes: { 'p.test': 'h:70000' } })).toThrow(/port/);
  });

  it('backs off exponentially up to the cap', () => {
    const delay = retryDelayMs({ firstSeconds: 60, factor: 2, maxSeconds: 300 });
    expect([1, 2, 3, 4, 5].map(delay)).toEqual([60_000, 120_000, 240_000, 300_000, 300_000]);
  });

  it('holds health mail (a patient sender, a CDA document) to the stricter policy', () => {
    const stage = new OutboundStage({
      trust: { lookup: async () => [], anchors: async () => [] },
      security: {} as SecurityContext,
      sealer: {} as QueueSealer,
      config: { encrypt: 'preferred', encryptHealthMail: 'required', certificates: {} },
    });
    const per = { type: 'PER' } as MailboxRow;
    const plain = Buffer.from('From: a@h.test\r\nSubject: x\r\n\r\nbody\r\n');
    const cda = Buffer.from('From: a@h.test\r\nX-MSS-CODECDA: 11488-4\r\nSubject: x\r\n\r\nbody\r\n');
    expect(stage.policyFor(per, plain)).toBe('preferred');
    expect(stage.policyFor(per, cda)).toBe('required');
    expect(stage.policyFor({ type: 'PATIENT' } as MailboxRow, plain)).toBe('required');
    const lax = new OutboundStage({
      trust: { lookup: async () => [], anchors: async () => [] },
      security: {} as SecurityContext,
      sealer: {} as QueueSealer,
      config: { encrypt: 'required', encryptHealthMail: 'never', certificates: {} },
    });
    expect(lax.policyFor(per, cda)).toBe('required'); // never looser than ordinary mail
  });
});

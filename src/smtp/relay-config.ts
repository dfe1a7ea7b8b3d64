import { z } from 'zod';

/**
 * The `relay` section of the configuration (mounted as `relay` in `src/config/schema.ts`): the inbound relay
 * between operators (the port-25 role), its limits, how the peers' TLS client certificates are checked for
 * revocation, and how long accepted idempotency keys are remembered.
 */
export const relayConfigSchema = z
  .object({
    enabled: z.boolean().default(true).describe('accept mail from the other operators of the trust space (STARTTLS, TLS client certificate)'),
    listener: z
      .object({
        host: z.string().min(1).default('127.0.0.1').describe('address to listen on'),
        port: z.number().int().min(0).max(65535).default(2525).describe('TCP port; 0 picks a free port (tests). The public role is port 25'),
      })
      .strict()
      .prefault({})
      .describe('SMTP relay between operators with STARTTLS (the port-25 role)'),
    maxMessageSize: z.number().int().positive().default(25 * 1024 * 1024).describe('bytes; advertised with SIZE, 552 5.3.4 beyond'),
    maxRecipients: z.number().int().positive().default(100).describe('RCPT TO per transaction; 452 4.5.3 beyond'),
    maxClients: z.number().int().positive().default(200).describe('concurrent relay connections'),
    maxConnectionsPerIp: z.number().int().positive().default(20).describe('concurrent relay connections from one peer address; 421 4.7.0 beyond'),
    socketTimeoutMs: z.number().int().positive().default(5 * 60_000).describe('idle relay connection timeout'),
    shutdownGraceMs: z.number().int().min(0).default(10_000).describe('on shutdown, how long open sessions may finish their transaction before they are closed'),
    requireProtection: z
      .boolean()
      .default(true)
      .describe('refuse (550 5.7.5) relayed mail that is not encrypted and signed (S/MIME or PGP/MIME) for its recipients'),
    crlFiles: z
      .array(z.string())
      .default([])
      .describe('CRL files (PEM or DER) of the CAs the operators\' certificates chain to, besides the http(s) distribution points the certificates name; they serve for the peers\' client certificates here and for their server certificates when we send'),
    crlUrls: z.array(z.string()).default([]).describe('CRL URLs of those CAs, fetched over http(s) and cached until their nextUpdate'),
    revocation: z
      .enum(['require', 'best-effort'])
      .default('require')
      .describe('require: a peer certificate whose revocation cannot be checked is refused for now (451 4.7.5 here; when we send, the item waits for a later attempt); best-effort: only a listed certificate is refused'),
    idempotencyRetentionDays: z
      .number()
      .int()
      .min(1)
      .default(10)
      .describe('how long accepted idempotency keys (X-MSS-Idempotency-Key) are remembered: longer than the senders\' maximum queue age (5 days by default), so a late retry is not delivered twice'),
  })
  .strict()
  .prefault({});

export type RelayConfig = z.infer<typeof relayConfigSchema>;

import { z } from 'zod';
import { directoryConfigSchema } from '../directory/config.js';
import { federationConfigSchema } from '../smtp/outbound-config.js';
import { trustConfigSchema } from '../policy/trust-config.js';
import { relayConfigSchema } from '../smtp/relay-config.js';

/**
 * The single source of truth for the configuration's shape. `config.example.json` documents every key and
 * is validated against this schema by a test. Every limit of the house rules lives here.
 */

const port = z.number().int().min(0).max(65535);
const host = z.string().min(1);

const listener = (defaultPort: number) =>
  z
    .object({
      host: host.default('127.0.0.1').describe('address to listen on'),
      port: port.default(defaultPort).describe('TCP port; 0 picks a free port (tests)'),
    })
    .strict()
    .prefault({});

export const configSchema = z
  .object({
    dataDir: z.string().min(1).default('./data').describe('database, master key and blobs live here'),
    certsDir: z.string().min(1).default('./certs').describe('dev PKI: CA certificates, CRLs, server and user certificates'),
    hostname: z.string().min(1).default('localhost').describe('name used in greetings, Received headers and the server certificate'),
    serverNames: z
      .array(z.string().min(1))
      .default(['localhost'])
      .describe('extra DNS names put in the server TLS certificate (localhost is always added)'),
    localDomains: z
      .array(z.string().min(1))
      .default(['hopital-demo.mssante.test', 'patient.mssante.test'])
      .describe('mail domains served by this operator; mail for any other domain is remote'),
    processes: z
      .number()
      .int()
      .min(1)
      .max(64)
      .default(1)
      .describe('server processes "mss start" runs, sharing its listeners (more use more cores); IMAP connections go to the process holding the fewest, and IMAP connection limits count across processes; each keeps its own caches and SMTP/HTTPS per-address limits'),
    store: z
      .object({
        engine: z.enum(['sqlite', 'postgres']).default('sqlite').describe('database engine: sqlite (the processes of one "mss start" on one machine) or postgres (processes on several machines)'),
        path: z.string().optional().describe('SQLite file; default <dataDir>/mss.sqlite'),
        url: z.string().optional().describe('PostgreSQL connection URL (postgres://user:password@host:5432/db); required when engine is postgres'),
        poolSize: z.number().int().positive().default(10).describe('PostgreSQL connections per process'),
        blobs: z
          .object({
            location: z
              .enum(['database', 'directory'])
              .default('database')
              .describe('where new sealed message bodies go: database (chunk rows of 256 KiB) or directory (one file per body); bodies already stored stay readable where they are'),
            directory: z
              .string()
              .min(1)
              .optional()
              .describe('blob directory; default <dataDir>/blobs. With several processes it must be one directory shared by all of them (same path everywhere)'),
          })
          .strict()
          .prefault({})
          .describe('sealed message bodies, stored and read in pieces'),
      })
      .strict()
      .refine((s) => s.engine !== 'postgres' || (s.url !== undefined && s.url.length > 0), {
        message: 'store.url is required when store.engine is "postgres" (e.g. "postgres://mss@127.0.0.1:5432/mss")',
        path: ['url'],
      })
      .prefault({}),
    smtp: z
      .object({
        submission: listener(2587).describe('SMTP submission with STARTTLS (the 587 role)'),
        submissionTls: listener(2465).describe('SMTP submission over implicit TLS (the 465 role)'),
        maxMessageSize: z.number().int().positive().default(25 * 1024 * 1024).describe('bytes; advertised with SIZE, 552 5.3.4 beyond'),
        maxRecipients: z.number().int().positive().default(100).describe('RCPT TO per transaction; 452 4.5.3 beyond'),
        maxClients: z.number().int().positive().default(500).describe('concurrent SMTP connections per listener'),
        maxConnectionsPerIp: z.number().int().positive().default(20).describe('concurrent SMTP connections from one client address; 421 4.7.0 beyond'),
        maxAuthFailuresPerConnection: z.number().int().positive().default(3).describe('failed AUTH attempts on one connection; the last is answered 421 4.7.0 and the connection closed'),
        maxUnauthenticatedCommands: z.number().int().positive().default(10).describe('commands allowed before a successful AUTH; the connection is closed beyond'),
        shutdownGraceMs: z.number().int().min(0).default(10_000).describe('on shutdown, how long open sessions may finish their transaction before they are closed'),
        socketTimeoutMs: z.number().int().positive().default(5 * 60_000).describe('idle SMTP connection timeout'),
      })
      .strict()
      .prefault({}),
    imap: z
      .object({
        plain: listener(2143).describe('IMAP with STARTTLS (the 143 role)'),
        tls: listener(2993).describe('IMAP over implicit TLS (the 993 role)'),
        maxLineLength: z.number().int().min(1024).default(64 * 1024).describe('bytes of one command line outside literals'),
        maxLiteralSize: z.number().int().positive().default(50 * 1024 * 1024).describe('bytes of one literal (APPEND size limit)'),
        idleTimeoutMs: z.number().int().min(1000).default(30 * 60_000).describe('authenticated idle timeout (RFC 9051: at least 30 minutes)'),
        preauthTimeoutMs: z.number().int().min(1000).default(60_000).describe('time allowed to log in after connecting'),
        maxAuthFailuresPerConnection: z.number().int().positive().default(3).describe('failed LOGIN/AUTHENTICATE on one connection; BYE after the last'),
        maxBadCommands: z.number().int().positive().default(10).describe('BAD replies before the connection is closed'),
        maxConnections: z.number().int().positive().default(1000).describe('concurrent IMAP connections per listener'),
        maxConnectionsPerIp: z.number().int().positive().default(20).describe('concurrent IMAP connections from one client address, both listeners together; BYE beyond'),
        maxFolders: z.number().int().positive().default(500).describe('folders one mailbox may hold (CREATE and RENAME beyond it get NO [LIMIT])'),
        maxMailboxNameLength: z.number().int().min(32).max(1024).default(255).describe('bytes (UTF-8) of a folder name, hierarchy included'),
        metaCacheMb: z
          .number()
          .min(0)
          .default(64)
          .describe('memory (estimated) for opened message metadata (envelopes, MIME structures) kept for the next FETCH, SEARCH or SORT; 0: none kept'),
      })
      .strict()
      .prefault({}),
    quota: z
      .object({
        storageKiB: z
          .number()
          .int()
          .min(0)
          .default(0)
          .describe('KiB one mailbox may hold, all folders together (sum of message sizes); 0 is no limit. IMAP APPEND and COPY, and delivery, beyond it are refused (MOVE stays allowed: it adds nothing)'),
        messages: z.number().int().min(0).default(0).describe('messages one mailbox may hold, all folders together; 0 is no limit'),
      })
      .strict()
      .prefault({})
      .describe('per-mailbox quota, reported by IMAP QUOTA (RFC 9208) and enforced by IMAP and delivery'),
    auth: z
      .object({
        maxFailures: z.number().int().positive().default(5).describe('failed logins for one address before it is locked out'),
        lockoutMs: z.number().int().positive().default(15 * 60_000).describe('how long a lockout lasts'),
      })
      .strict()
      .prefault({}),
    pki: z
      .object({
        keyAlgorithm: z.enum(['RSA-2048', 'RSA-3072', 'RSA-4096', 'ECDSA-P256']).default('RSA-2048').describe('key type of every dev PKI key'),
        hash: z.enum(['SHA-256', 'SHA-384', 'SHA-512']).default('SHA-256').describe('signature hash of certificates and CRLs'),
        caValidityDays: z.number().int().positive().default(3650).describe('validity of the dev CA certificates'),
        leafValidityDays: z.number().int().positive().default(825).describe('validity of server and user certificates'),
      })
      .strict()
      .prefault({}),
    security: z
      .object({
        localProtection: z
          .enum(['off', 'on-request', 'always'])
          .default('on-request')
          .describe(
            'mail between local mailboxes: sign and encrypt it with the sender\'s and recipients\' certificates when the sender asks (header X-MSS-Protection: smime | pgp), always (S/MIME), or never. Either way the recipient reads it decrypted and verified, with an X-MSS-Verification header',
          ),
        trustAnchors: z.array(z.string()).default([]).describe('PEM files of trusted root certificates; default the dev PKI root'),
        intermediates: z.array(z.string()).default([]).describe('PEM files of intermediate CA certificates; default the dev PKI CAs'),
        crlFiles: z.array(z.string()).default([]).describe('CRL files (PEM or DER); default the dev PKI CRLs'),
        crlUrls: z.array(z.string()).default([]).describe('CRL URLs fetched over http(s), cached until their nextUpdate'),
        crlRefreshMs: z.number().int().positive().default(3_600_000).describe('reload every CRL at least this often'),
        revocation: z
          .enum(['require', 'best-effort'])
          .default('require')
          .describe('require: no valid CRL for a certificate is a (temporary) refusal; best-effort: only a listed certificate is refused'),
        allowSha1: z.boolean().default(false).describe('accept SHA-1 signatures (MD5 is never accepted)'),
        digest: z.enum(['sha256', 'sha384', 'sha512']).default('sha256').describe('digest of our S/MIME signatures'),
        contentEncryption: z
          .enum(['aes-256-cbc', 'aes-128-cbc', 'aes-256-gcm', 'aes-128-gcm'])
          .default('aes-256-cbc')
          .describe('S/MIME content encryption; GCM makes AuthEnvelopedData (RFC 5083), which not every client reads'),
        keyTransport: z.enum(['rsa-pkcs1', 'rsa-oaep-sha256']).default('rsa-pkcs1').describe('S/MIME key transport: PKCS#1 v1.5 (every client) or RSA-OAEP with SHA-256'),
        requireSignature: z.boolean().default(true).describe('refuse an S/MIME or PGP/MIME message that is encrypted but not signed'),
      })
      .strict()
      .prefault({}),
    http: z
      .object({
        listener: listener(2443).describe('HTTPS for the JSON API (address-book completion) and, later, the webmail'),
        maxConnections: z.number().int().positive().default(500).describe('concurrent HTTPS connections'),
        requestTimeoutMs: z.number().int().positive().default(30_000).describe('time allowed to receive a whole request'),
      })
      .strict()
      .prefault({}),
    webmail: z
      .object({
        enabled: z.boolean().default(true).describe('serve the webmail (pages, forms, static files) on the HTTPS listener'),
        sessionIdleMinutes: z.number().int().positive().default(15).describe('a webmail session ends after this long without a request'),
        sessionAbsoluteHours: z.number().positive().default(12).describe('a webmail session ends this long after login, active or not'),
        secondFactorMinutes: z.number().int().positive().default(5).describe('time allowed between the password and the TOTP code of a patient login'),
        maxFailuresPerIp: z.number().int().positive().default(20).describe('failed webmail logins (password or TOTP) from one address before it is locked out'),
        ipLockoutMs: z.number().int().positive().default(15 * 60_000).describe('how long such a lockout of an address lasts'),
        maxFormBytes: z.number().int().positive().default(64 * 1024).describe('largest form body without attachments'),
        maxUploadBytes: z.number().int().positive().default(20 * 1024 * 1024).describe('largest compose form with its attachments'),
        pageSize: z.number().int().positive().max(500).default(50).describe('messages listed per page of a folder'),
        historyLimit: z.number().int().positive().default(200).describe('most recent entries shown in "who accessed my messages"'),
      })
      .strict()
      .prefault({})
      .describe('the webmail: sessions (idle and absolute expiry), login limits, upload limits'),
    xdm: z
      .object({
        maxEntries: z.number().int().positive().default(256).describe('most entries (files and folders) in one IHE_XDM.ZIP archive'),
        maxTotalBytes: z.number().int().positive().default(64 * 1024 * 1024).describe('largest sum of the uncompressed sizes of an archive\'s entries'),
        maxEntryBytes: z.number().int().positive().default(32 * 1024 * 1024).describe('largest uncompressed size of one archive entry'),
        maxCompressionRatio: z.number().positive().default(200).describe('largest uncompressed/compressed ratio of one entry (zip bombs compress about 1000:1)'),
        ratioFloorBytes: z.number().int().min(0).default(65536).describe('entries smaller than this (uncompressed) are not held to the ratio'),
        maxXmlBytes: z.number().int().positive().default(32 * 1024 * 1024).describe('largest XML document (XDM metadata or CDA) read'),
        maxXmlDepth: z.number().int().positive().default(200).describe('deepest XML element nesting read'),
        maxPackagesPerMessage: z.number().int().positive().default(8).describe('most XDM archives examined in one message'),
        acceptTestIns: z.boolean().default(true).describe('count the test INS OIDs (1.2.250.1.213.1.4.10 and .11) as INS when computing X-MSS-INS'),
      })
      .strict()
      .prefault({})
      .describe('IHE XDM archives of structured documents (X-MSS-CODECDA, X-MSS-INS; zip-bomb and XML limits)'),
    trust: trustConfigSchema.describe('the trust space: the national list of operator domains, its CA bundle, its refresh, and what we publish about ourselves'),
    relay: relayConfigSchema.describe('the inbound relay between operators of the trust space: STARTTLS, TLS client certificate, local recipients only'),
    federation: federationConfigSchema.describe('mail to other operators of the trust space: protection, routes, the outbound queue and its DSNs'),
    directory: directoryConfigSchema.describe('the practitioner directory (Annuaire Santé extractions) and the sender checks'),
    patients: z
      .object({
        domain: z
          .string()
          .min(1)
          .default('patient.mssante.test')
          .describe('mail domain of patient mailboxes, <INS matricule>@<domain> (the national model: patient.mssante.fr); served locally'),
        autoCreate: z.boolean().default(true).describe("a professional's first message to a valid INS address with no mailbox creates it, pending activation"),
        opposeWindowDays: z.number().int().positive().default(30).describe('days after its creation during which a patient may still oppose to the mailbox (the national model: one month)'),
        graceDays: z.number().int().min(0).default(30).describe('days after an opposition before the messages the mailbox held are destroyed'),
        activationCodeHours: z.number().int().positive().default(720).describe('validity of an activation code (mss patient activate-code; a deployment mails it by post)'),
        allowImap: z.boolean().default(false).describe('let active patients log in by IMAP too (default: webmail only; never SMTP)'),
      })
      .strict()
      .prefault({})
      .describe('patient mailboxes: addresses, creation, activation, opposition'),
    demo: z
      .object({
        enabled: z.boolean().default(true).describe('create the demo hospital, practitioners and patient on first init'),
        domain: z.string().min(1).default('hopital-demo.mssante.test').describe('mail domain of the demo hospital (served locally)'),
      })
      .strict()
      .prefault({}),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('log level of the JSON log on stderr'),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;

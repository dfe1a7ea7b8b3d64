import { z } from 'zod';

/**
 * The `federation` section of the configuration: mail from our users to the other operators of the trust
 * space — how it is protected (encryption policy, where recipients' certificates come from), how it is routed
 * and handed over (static routes or MX, connection limits and timeouts), how long the queue keeps trying, and how
 * long the sender waits for the MDNs it asked for.
 */

const ENCRYPT = ['required', 'preferred', 'never'] as const;
export type EncryptPolicy = (typeof ENCRYPT)[number];

const route = z
  .string()
  .regex(/^[^\s:]+:\d{1,5}$/, 'expected host:port')
  .refine((r) => Number(r.slice(r.lastIndexOf(':') + 1)) <= 65535, 'port out of range');

export const federationConfigSchema = z
  .object({
    encrypt: z
      .enum(ENCRYPT)
      .default('required')
      .describe(
        'mail to other operators is always signed with the sender\'s certificate; encrypted to the recipients\' certificates: required (no certificate for a recipient: refused before 250, 550 5.7.5), preferred (encrypted when every recipient of the destination has a certificate, else signed only) or never',
      ),
    encryptHealthMail: z
      .enum(ENCRYPT)
      .default('required')
      .describe('the same policy for mail from a patient mailbox or carrying a health document (X-MSS-CODECDA); the stricter of the two applies'),
    certificates: z
      .record(z.string().min(1), z.string().min(1))
      .default({})
      .describe(
        'per-domain certificate resolver: { "domain": "PEM file or directory of PEM files" } holding recipients\' encryption certificates (each must name its address, or the domain); consulted after the correspondents of the keystore and the directory',
      ),
    routes: z
      .record(z.string().min(1), route)
      .default({})
      .describe('static routes: { "domain": "host:port" }; other domains are routed by their MX records (then the domain itself) on mxPort'),
    mxPort: z.number().int().min(1).max(65535).default(25).describe('SMTP port of hosts found by MX lookup'),
    retry: z
      .object({
        firstSeconds: z.number().positive().default(60).describe('delay before the second attempt'),
        factor: z.number().min(1).default(2).describe('each further delay is the previous one times this'),
        maxSeconds: z.number().positive().default(3600).describe('longest delay between two attempts'),
      })
      .strict()
      .prefault({})
      .describe('exponential backoff between attempts to deliver one queued message'),
    maxAgeDays: z.number().positive().default(5).describe('a message still undelivered after this long fails: a failure DSN goes to the sender'),
    delayNoticeAfterMinutes: z
      .number()
      .min(0)
      .default(240)
      .describe('a message still undelivered after this long gets one delay DSN to the sender (at the next failed attempt)'),
    mdnDeadlineMinutes: z
      .number()
      .positive()
      .default(1440)
      .describe(
        'a message to another operator that asked for MDNs (Disposition-Notification-To, its own address) and has no processed MDN back after this long — or no dispatched MDN, when it asked for one (X-DIRECT-FINAL-DESTINATION-DELIVERY) — gets one failure notice in its sender\'s INBOX',
      ),
    maxPerDestination: z.number().int().positive().default(4).describe('concurrent deliveries (and connections) to one destination domain'),
    maxMessagesPerConnection: z.number().int().positive().default(100).describe('messages sent over one connection before it is closed and a new one opened'),
    connectTimeoutSeconds: z.number().positive().default(30).describe('time allowed to open a connection to a peer'),
    greetingTimeoutSeconds: z.number().positive().default(30).describe('time allowed for the peer\'s greeting'),
    socketTimeoutSeconds: z.number().positive().default(300).describe('idle time allowed on a connection to a peer'),
    batch: z.number().int().positive().default(16).describe('queued messages a worker claims and delivers at once'),
    leaseSeconds: z
      .number()
      .positive()
      .default(300)
      .describe('how long a claim lives without renewal: a process that dies leaves its messages to the others after this'),
    idleSeconds: z.number().positive().default(5).describe('how often an idle worker looks for due messages (a submission wakes it at once)'),
  })
  .strict()
  .prefault({});

export type FederationConfig = z.infer<typeof federationConfigSchema>;

/** Exponential backoff from `federation.retry`: the delay after `attempts` attempts (1 after the first). */
export function retryDelayMs(retry: FederationConfig['retry']): (attempts: number) => number {
  return (attempts) => Math.round(Math.min(retry.firstSeconds * retry.factor ** Math.max(0, attempts - 1), retry.maxSeconds) * 1000);
}

export const DAY_MS = 24 * 3_600_000;

import { z } from 'zod';

/**
 * The `trust` section of the configuration (to be mounted as `trust` in `src/config/schema.ts`): where the
 * trust-space list comes from and how often it is refreshed, the CA bundle stored with it, and what
 * `mss trust export` publishes about this operator.
 */
export const trustConfigSchema = z
  .object({
    source: z
      .string()
      .min(1)
      .optional()
      .describe(
        'the operator domain list (XML, namespace https://listeblanche.mssante.fr/schema) to load at start and refresh: an https:// URL ' +
          '(e.g. https://espacedeconfiance.mssante.fr/listeblanchemssante.xml) or a file path; unset: only "mss trust import" changes it',
      ),
    refreshMinutes: z.number().int().min(1).default(360).describe('how often the list is fetched again from trust.source; a failed fetch keeps the last good list'),
    caFile: z
      .string()
      .min(1)
      .optional()
      .describe('PEM bundle of the CAs the operators\' server certificates must chain to (IGC-Santé), stored with each list refreshed from trust.source; unset: the bundle stored with the list stays'),
    sourceCaFile: z
      .string()
      .min(1)
      .optional()
      .describe('PEM CA certificates to verify the HTTPS server of trust.source with (the national list is served under IGC-Santé, which Node does not trust by default)'),
    maxBytes: z.number().int().positive().default(32 * 1024 * 1024).describe('largest list accepted (bytes); the national list is about 4 MB'),
    maxSkippedRatio: z
      .number()
      .min(0)
      .max(1)
      .default(0.1)
      .describe('a list with a larger share of unusable Domaine entries is refused as a whole (the last good list stays); below it they are skipped and reported'),
    fetchTimeoutMs: z.number().int().positive().default(60_000).describe('time allowed to download the list from an https:// source'),
    export: z
      .object({
        domains: z.array(z.string().min(1)).optional().describe('domains "mss trust export" publishes; default localDomains'),
        description: z.string().optional().describe('Description of our entries; default "Opérateur <hostname>"'),
        responsableContact: z.string().default('').describe('ResponsableContact of our entries'),
        supportContact: z.string().default('').describe('SupportContact of our entries'),
      })
      .strict()
      .prefault({})
      .describe('what "mss trust export" writes about this operator (its DN is the subject of our server certificate)'),
  })
  .strict()
  .prefault({});

export type TrustConfig = z.infer<typeof trustConfigSchema>;

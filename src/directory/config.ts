import { z } from 'zod';
import { DIRECTORY_CHECK_MODES } from '../pipeline/check-directory.js';

/**
 * The `directory` section of the configuration (to be mounted as `directory` in `src/config/schema.ts`).
 * Every key is described: `config.example.json` and docs/configuration.md are generated from the descriptions.
 */
export const directoryConfigSchema = z
  .object({
    senderCheck: z
      .enum(DIRECTORY_CHECK_MODES)
      .default('enforce')
      .describe(
        'sender checks against the practitioner directory: enforce refuses (550 5.7.1) an unknown or inactive practitioner, ' +
          'a sender absent from the directory or a signer who is not the address owner; warn delivers and audits instead',
      ),
    cacheSeconds: z
      .number()
      .int()
      .min(0)
      .max(3600)
      .default(30)
      .describe('how long each process remembers a sender-check lookup (an import reaches running processes within this time); 0 reads the store every time'),
    searchLimit: z.number().int().min(1).max(100).default(20).describe('most entries the address-book completion endpoint returns for one query'),
    importMaxBadRatio: z
      .number()
      .min(0)
      .max(1)
      .default(0.5)
      .describe('mss directory import refuses, changing nothing, a file with a larger share of bad rows (it would deactivate most of the directory)'),
  })
  .strict()
  .prefault({});

export type DirectoryConfig = z.infer<typeof directoryConfigSchema>;

import pino, { type Logger } from 'pino';

/**
 * JSON logs on stderr (stdout is for what the CLI tells the operator). Message bodies, passwords and
 * SASL payloads are never passed to the logger; these paths are redacted as a second line of defence.
 */
export function createLogger(level: string): Logger {
  return pino(
    {
      level,
      base: { service: 'mss' },
      redact: { paths: ['password', '*.password', 'raw', '*.raw', 'body', '*.body', 'authorization'], censor: '[redacted]' },
    },
    pino.destination({ fd: 2, sync: false }),
  );
}

import { Command, InvalidArgumentError } from 'commander';
import { appendAudit } from '../audit/journal.js';
import type { Keyring } from '../crypto/seal.js';
import type { QueueItem, Store } from '../store/types.js';
import { QueueSealer, type QueueEnvelope } from './envelope.js';

/**
 * `mss queue list|show|retry|delete`: what waits for other operators. Items are opened with the master key
 * for their envelope only (addresses, state); message content is never printed. Registered on the `mss`
 * program by `registerQueueCommands`.
 */

export interface QueueCliDeps {
  /** Runs `work` with the operator's open store (cli.ts: `withStore(configOf(cmd), work)`). */
  withStore<T>(cmd: Command, work: (store: Store) => Promise<T>): Promise<T>;
  /** The operator's keyring (cli.ts: `openKeyring(configOf(cmd))`). */
  keyringOf(cmd: Command): Keyring;
  out?: (line: string) => void;
  err?: (line: string) => void;
  now?: () => number;
}

/** Errors a person can act on: printed as `mss: …`, exit code 2. */
class QueueUsageError extends Error {}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

function state(item: QueueItem, now: number): string {
  if (item.leaseUntil !== null && item.leaseUntil > now) return 'in delivery';
  return item.nextAttemptAt <= now ? 'due' : 'waiting';
}

export function registerQueueCommands(program: Command, deps: QueueCliDeps): Command {
  const out = deps.out ?? ((line: string) => console.log(line));
  const err = deps.err ?? ((line: string) => console.error(line));
  const now = deps.now ?? Date.now;
  const withConfig = (cmd: Command) => cmd.option('-c, --config <file>', 'configuration file (default ./config.json, else built-in defaults)');

  const run = async (cmd: Command, work: (store: Store, sealer: QueueSealer) => Promise<void>): Promise<void> => {
    try {
      const sealer = new QueueSealer(deps.keyringOf(cmd));
      await deps.withStore(cmd, (store) => work(store, sealer));
    } catch (e) {
      if (!(e instanceof QueueUsageError || e instanceof InvalidArgumentError)) throw e;
      err(`mss: ${e.message}`);
      process.exitCode = 2;
    }
  };

  const itemOf = async (store: Store, id: string): Promise<QueueItem> => {
    const item = await store.getQueueItem(id);
    if (!item) throw new QueueUsageError(`no queue item ${id} (delivered, failed or deleted already?): see "mss queue list"`);
    return item;
  };

  const envelopeOf = (sealer: QueueSealer, item: QueueItem): QueueEnvelope | null => {
    try {
      return sealer.openEnvelope(item);
    } catch {
      return null;
    }
  };

  const queue = program.command('queue').description('the outbound queue: mail waiting to be handed to other operators');

  withConfig(queue.command('list'))
    .description('list queued messages, oldest first')
    .option('--limit <n>', 'show at most this many (default 100)', positiveInt)
    .action(async (opts: { limit?: number }, cmd: Command) => {
      await run(cmd, async (store, sealer) => {
        const items = await store.listQueue(opts.limit ?? 100);
        const t = now();
        for (const item of items) {
          const envelope = envelopeOf(sealer, item);
          const who = envelope ? `${envelope.sender} -> ${envelope.recipients.length} recipient${envelope.recipients.length === 1 ? '' : 's'}` : 'envelope unreadable';
          out(
            [item.id, item.destination, state(item, t), `attempts ${item.attempts}`, `queued ${iso(item.createdAt)}`, `next ${iso(item.nextAttemptAt)}`, who].join('  '),
          );
        }
        const total = await store.queueLength();
        out(`${total} queued message${total === 1 ? '' : 's'}${total > items.length ? ` (${items.length} shown)` : ''}`);
      });
    });

  withConfig(queue.command('show <id>'))
    .description('show one queued message: envelope, attempts, next attempt, last error (never its content)')
    .action(async (id: string, _opts, cmd: Command) => {
      await run(cmd, async (store, sealer) => {
        const item = await itemOf(store, id);
        const t = now();
        const envelope = envelopeOf(sealer, item);
        out(`id:            ${item.id}`);
        out(`destination:   ${item.destination}`);
        out(`state:         ${state(item, t)}${item.leaseOwner && item.leaseUntil !== null && item.leaseUntil > t ? ` (worker ${item.leaseOwner} until ${iso(item.leaseUntil)})` : ''}`);
        out(`queued:        ${iso(item.createdAt)}`);
        out(`attempts:      ${item.attempts}`);
        out(`next attempt:  ${iso(item.nextAttemptAt)}`);
        out(`size:          ${item.sealedMessage.length} bytes sealed`);
        if (!envelope) {
          out('envelope:      cannot be opened with this master key');
          return;
        }
        out(`submission:    ${envelope.submissionId} by ${envelope.sender}, received ${iso(envelope.receivedAt)}`);
        out(`mail from:     <${envelope.mailFrom}>`);
        out(`recipients:    ${envelope.recipients.map((r) => `<${r}>`).join(', ')}`);
        out(`protection:    ${envelope.protection}`);
        out(`last error:    ${envelope.lastError ? `${iso(envelope.lastError.at)} ${envelope.lastError.reason}` : 'none'}`);
        out(`delay notice:  ${envelope.delayNoticeAt === null ? 'not sent' : `sent ${iso(envelope.delayNoticeAt)}`}`);
      });
    });

  withConfig(queue.command('retry <id>'))
    .description('make a queued message due now (a running server tries it at its next round)')
    .action(async (id: string, _opts, cmd: Command) => {
      await run(cmd, async (store) => {
        const item = await itemOf(store, id);
        const t = now();
        await store.transaction(async (tx) => {
          if (!(await tx.rescheduleQueueItem(id, t))) throw new QueueUsageError(`no queue item ${id}: it left the queue meanwhile`);
          await appendAudit(tx, { actor: 'cli', action: 'queue-retry', object: id, outcome: 'ok', detail: { destination: item.destination, attempts: item.attempts } });
        });
        const busy = item.leaseUntil !== null && item.leaseUntil > t;
        out(busy ? `${id} is being delivered right now; if this attempt fails it is due again at once` : `${id} is due now`);
      });
    });

  withConfig(queue.command('delete <id>'))
    .description('remove a queued message without delivering it (no DSN is sent; the removal is audited)')
    .action(async (id: string, _opts, cmd: Command) => {
      await run(cmd, async (store, sealer) => {
        const item = await itemOf(store, id);
        const envelope = envelopeOf(sealer, item);
        await store.transaction(async (tx) => {
          if (!(await tx.deleteQueueItem(id))) throw new QueueUsageError(`no queue item ${id}: it left the queue meanwhile`);
          await appendAudit(tx, {
            actor: 'cli',
            action: 'queue-delete',
            object: id,
            outcome: 'ok',
            detail: { destination: item.destination, attempts: item.attempts, queueId: envelope?.submissionId ?? null, sender: envelope?.sender ?? null },
          });
        });
        out(`deleted ${id} (${item.destination}); the sender was not notified`);
      });
    });

  return queue;
}

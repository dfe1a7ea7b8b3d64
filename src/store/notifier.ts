import type { MailboxEvent, Notifier } from './types.js';

/** Notifier for one process: listeners are called synchronously after publish, in subscription order. */
export class LocalNotifier implements Notifier {
  readonly #listeners = new Map<number, Set<(event: MailboxEvent) => void>>();

  publish(event: MailboxEvent): void {
    for (const listener of [...(this.#listeners.get(event.mailboxId) ?? [])]) {
      try {
        listener(event);
      } catch {
        // A failing listener (a session that went away) must not stop the others.
      }
    }
  }

  subscribe(mailboxId: number, listener: (event: MailboxEvent) => void): () => void {
    let set = this.#listeners.get(mailboxId);
    if (!set) this.#listeners.set(mailboxId, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.#listeners.delete(mailboxId);
    };
  }

  async close(): Promise<void> {
    this.#listeners.clear();
  }
}

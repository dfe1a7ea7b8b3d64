import { appendAudit } from '../audit/journal.js';
import type { Keyring } from '../crypto/seal.js';
import type { MailboxRow, MailboxType, Store } from '../store/types.js';
import { hashPassword } from './password.js';

/** The folders every new mailbox starts with, with their RFC 6154 special-use attribute. */
export const DEFAULT_FOLDERS: readonly { name: string; specialUse: string | null }[] = [
  { name: 'INBOX', specialUse: null },
  { name: 'Sent', specialUse: '\\Sent' },
  { name: 'Drafts', specialUse: '\\Drafts' },
  { name: 'Trash', specialUse: '\\Trash' },
  { name: 'Junk', specialUse: '\\Junk' },
];

const ADDRESS = /^[a-z0-9!#$%&'*+/=?^_`{|}~.-]+@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$/;

export class MailboxError extends Error {}

export function normaliseAddress(address: string): string {
  const lower = address.trim().toLowerCase();
  if (lower.length > 254 || !ADDRESS.test(lower) || lower.includes('..') || lower.startsWith('.') || lower.includes('.@')) {
    throw new MailboxError(`not a valid mail address: ${JSON.stringify(address)}`);
  }
  return lower;
}

export interface CreateMailboxInput {
  address: string;
  type: MailboxType;
  ownerId?: string | null;
  displayName?: string | null;
  password?: string | null;
  actor?: string;
}

/** Creates a mailbox, its data key and its default folders in one unit of work, and audits it. */
export async function createMailbox(store: Store, keyring: Keyring, input: CreateMailboxInput): Promise<MailboxRow> {
  const address = normaliseAddress(input.address);
  const passwordHash = input.password ? await hashPassword(input.password) : null;
  const { wrapped } = keyring.newMailboxKey(address);
  return store.transaction(async (tx) => {
    if (await tx.getMailbox(address)) throw new MailboxError(`mailbox already exists: ${address}`);
    const mailbox = await tx.insertMailbox({
      address,
      type: input.type,
      ownerId: input.ownerId ?? null,
      displayName: input.displayName ?? null,
      passwordHash,
      state: 'active',
      wrappedKey: wrapped,
    });
    for (const folder of DEFAULT_FOLDERS) {
      await tx.insertFolder({ mailboxId: mailbox.id, name: folder.name, specialUse: folder.specialUse, subscribed: true });
    }
    await appendAudit(tx, {
      actor: input.actor ?? 'cli',
      action: 'mailbox-create',
      object: address,
      outcome: 'ok',
      detail: { type: input.type },
    });
    return mailbox;
  });
}

export async function setMailboxPassword(store: Store, addressInput: string, password: string, actor = 'cli'): Promise<void> {
  const address = normaliseAddress(addressInput);
  const passwordHash = await hashPassword(password);
  await store.transaction(async (tx) => {
    const mailbox = await tx.getMailbox(address);
    if (!mailbox) throw new MailboxError(`no such mailbox: ${address}`);
    await tx.updateMailbox(mailbox.id, { passwordHash });
    await tx.clearAuthFailures(`login:${address}`);
    await appendAudit(tx, { actor, action: 'mailbox-passwd', object: address, outcome: 'ok' });
  });
}

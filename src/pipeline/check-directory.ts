import type { AuditEvent } from '../audit/journal.js';
import { isIdNatPs, isIdNatStruct, isNir, isRpps } from '../directory/identifiers.js';
import type { DirectoryReads } from '../store/directory-types.js';
import type { MailboxRow, MailboxType } from '../store/types.js';
import { Refusal, type RefusalCode } from './refusal.js';

/**
 * Sender checks against the practitioner directory (docs/decisions/0007-directory.md).
 *
 * - Submission: the From address must be a mailbox of the authenticated account (always enforced); a PER or
 *   CAB mailbox's owner must be a practitioner of the directory, active (present in the latest snapshot of the
 *   PS_LibreAcces file).
 * - Inbound relay: every From address must be an active mailbox of the directory; when the message is signed,
 *   the practitioner identifier of the signer's certificate must be the directory's owner of that address.
 * - Local mailboxes (`mss mailbox add --owner`): the owner identifier must be well formed for the mailbox type,
 *   and a PER or CAB owner must be an active practitioner.
 *
 * `mode` relaxes only what depends on directory data (whose freshness the operator controls): `enforce`
 * throws the first `Refusal`, `warn` returns them as warnings for the caller to audit (`directoryWarningEvents`)
 * and lets the message through. Ownership of the From address and the format of identifiers are enforced in
 * both modes.
 *
 * The stage reads the directory only; it needs from the pipeline the authenticated account's mailbox row, the
 * From addresses (parsed, lower-case), and for a signed relayed message the signer's practitioner identifier.
 */

export const DIRECTORY_CHECK_MODES = ['enforce', 'warn'] as const;
export type DirectoryCheckMode = (typeof DIRECTORY_CHECK_MODES)[number];

/** The part of the directory the checks read. */
export type DirectoryLookups = Pick<DirectoryReads, 'getMailbox' | 'getPractitioner'>;

export interface DirectoryVerdict {
  /** Refusals that `warn` mode let through (empty in `enforce` mode: the first one is thrown). */
  warnings: Refusal[];
}

class Findings {
  readonly warnings: Refusal[] = [];

  constructor(private readonly mode: DirectoryCheckMode) {}

  /** A directory finding: thrown in enforce mode, kept as a warning in warn mode. */
  add(code: RefusalCode, detail: string): void {
    const refusal = new Refusal(code, detail);
    if (this.mode === 'enforce') throw refusal;
    this.warnings.push(refusal);
  }

  verdict(): DirectoryVerdict {
    return { warnings: this.warnings };
  }
}

/** A practitioner identifier as certificates may carry it: `8` + RPPS, or the bare RPPS. */
export function practitionerIdOf(value: string): string {
  const v = value.trim();
  return isRpps(v) ? `8${v}` : v;
}

/** The owner of a PER or CAB mailbox must be an active practitioner of the directory. */
async function checkPractitioner(directory: DirectoryLookups, ownerId: string | null, address: string, findings: Findings): Promise<void> {
  if (ownerId === null || !isIdNatPs(ownerId)) {
    findings.add('sender-unknown-practitioner', `${address} has no practitioner identifier (8 + RPPS or 0 + ADELI)`);
    return;
  }
  const practitioner = await directory.getPractitioner(ownerId);
  if (!practitioner) findings.add('sender-unknown-practitioner', `${ownerId} is not in the directory`);
  else if (!practitioner.active) findings.add('sender-inactive-practitioner', `${ownerId} left the directory in snapshot ${practitioner.removedSnapshot}`);
}

/**
 * Submission by an authenticated account. `from` holds the From header's addresses, lower-case. Throws
 * `sender-not-owned` whatever the mode when they are not exactly the account's own address.
 */
export async function checkSubmissionSender(
  directory: DirectoryLookups,
  input: { account: MailboxRow; from: readonly string[] },
  mode: DirectoryCheckMode,
): Promise<DirectoryVerdict> {
  const { account } = input;
  const from = input.from.map((a) => a.trim().toLowerCase());
  if (from.length !== 1 || from[0] !== account.address) {
    throw new Refusal('sender-not-owned', `From ${from.join(', ') || '(none)'} is not the mailbox of the authenticated account`);
  }
  const findings = new Findings(mode);
  if (account.type === 'PER' || account.type === 'CAB') await checkPractitioner(directory, account.ownerId, account.address, findings);
  return findings.verdict();
}

/**
 * A message relayed by another operator. Every From address must be an active directory mailbox; a signed
 * message's signer (its certificate's practitioner identifier, `8` + RPPS or the bare RPPS) must be the
 * directory's owner of the From address.
 */
export async function checkRelaySender(
  directory: DirectoryLookups,
  input: { from: readonly string[]; signerPractitionerId?: string | null },
  mode: DirectoryCheckMode,
): Promise<DirectoryVerdict> {
  const findings = new Findings(mode);
  const from = input.from.map((a) => a.trim().toLowerCase()).filter((a) => a !== '');
  if (from.length === 0) findings.add('sender-not-in-directory', 'the message has no From address');
  for (const address of from) {
    const mailbox = await directory.getMailbox(address);
    if (!mailbox) {
      findings.add('sender-not-in-directory', `${address} is not in the directory`);
      continue;
    }
    if (!mailbox.active) {
      findings.add('sender-not-in-directory', `${address} left the directory in snapshot ${mailbox.removedSnapshot}`);
      continue;
    }
    if (input.signerPractitionerId !== undefined && input.signerPractitionerId !== null) {
      const signer = practitionerIdOf(input.signerPractitionerId);
      if (mailbox.ownerId !== signer) {
        findings.add('signer-not-directory-owner', `signed by ${signer}, but the directory owner of ${address} is ${mailbox.ownerId ?? 'nobody'}`);
      }
    }
  }
  return findings.verdict();
}

/** Whether `ownerId` is an identifier of the kind a mailbox of this type belongs to. */
export function ownerIdentifierValid(type: MailboxType, ownerId: string): boolean {
  switch (type) {
    case 'PER':
    case 'CAB':
      return isIdNatPs(ownerId);
    case 'ORG':
    case 'APP':
      return isIdNatStruct(ownerId);
    case 'PATIENT':
      return isNir(ownerId);
  }
}

/**
 * A local mailbox about to be created (`mss mailbox add`). A malformed owner identifier is refused in both
 * modes (`invalid-owner-identifier`); a PER or CAB mailbox's owner must be an active practitioner.
 */
export async function checkMailboxOwner(
  directory: DirectoryLookups,
  input: { address: string; type: MailboxType; ownerId: string | null },
  mode: DirectoryCheckMode,
): Promise<DirectoryVerdict> {
  const ownerId = input.ownerId?.trim() || null;
  if (ownerId !== null && !ownerIdentifierValid(input.type, ownerId)) {
    throw new Refusal('invalid-owner-identifier', `${JSON.stringify(ownerId)} for a ${input.type} mailbox`);
  }
  const findings = new Findings(mode);
  if (input.type === 'PER' || input.type === 'CAB') await checkPractitioner(directory, ownerId, input.address.toLowerCase(), findings);
  return findings.verdict();
}

/** Audit records of what warn mode let through (append them with the unit of work that accepts the message). */
export function directoryWarningEvents(verdict: DirectoryVerdict, actor: string, object: string): AuditEvent[] {
  return verdict.warnings.map((w) => ({
    actor,
    action: 'sender-warning',
    object,
    outcome: w.code,
    detail: { mode: 'warn', reason: w.detail ?? null },
  }));
}

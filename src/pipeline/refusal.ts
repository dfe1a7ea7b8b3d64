/**
 * Every refusal carries one code from this table, used in the SMTP reply (with an enhanced status code),
 * the audit record and the log. Texts meant for people are in French with an English version.
 */
export const REFUSALS = {
  'auth-required': { smtp: 530, enhanced: '5.7.0', fr: 'Authentification requise', en: 'Authentication required' },
  'sender-not-owned': {
    smtp: 550,
    enhanced: '5.7.1',
    fr: "Vous ne pouvez envoyer qu'avec l'adresse de votre propre boîte",
    en: 'You may only send as the address of your own mailbox',
  },
  'patient-may-not-initiate': {
    smtp: 550,
    enhanced: '5.7.1',
    fr: "Un patient ne peut pas envoyer de message par SMTP : répondez depuis la messagerie web à un message de votre professionnel de santé",
    en: 'Patient mailboxes cannot send over SMTP: patients reply from the webmail to a message a professional sent them',
  },
  'unknown-recipient': { smtp: 550, enhanced: '5.1.1', fr: 'Destinataire inconnu', en: 'No such recipient here' },
  'recipient-disabled': { smtp: 550, enhanced: '5.2.1', fr: 'Boîte du destinataire désactivée', en: 'Recipient mailbox is disabled' },
  'remote-domain-not-allowed': {
    smtp: 550,
    enhanced: '5.7.1',
    fr: "Domaine hors de l'espace de confiance de cet opérateur : l'envoi vers d'autres opérateurs n'est pas encore ouvert",
    en: "Domain is outside this operator's trust space: relaying to other operators is not enabled",
  },
  'bad-address': { smtp: 553, enhanced: '5.1.3', fr: 'Adresse mal formée', en: 'Malformed address' },
  'too-many-recipients': { smtp: 452, enhanced: '4.5.3', fr: 'Trop de destinataires', en: 'Too many recipients' },
  'message-too-large': { smtp: 552, enhanced: '5.3.4', fr: 'Message trop volumineux', en: 'Message exceeds the size limit' },
  'malformed-message': { smtp: 554, enhanced: '5.6.0', fr: 'Message mal formé', en: 'Malformed message' },
  'no-recipients': { smtp: 554, enhanced: '5.5.1', fr: 'Aucun destinataire valide', en: 'No valid recipients' },
  'temporary-failure': {
    smtp: 451,
    enhanced: '4.3.0',
    fr: 'Erreur temporaire, réessayez plus tard',
    en: 'Temporary failure, please try again later',
  },
} as const satisfies Record<string, { smtp: number; enhanced: string; fr: string; en: string }>;

export type RefusalCode = keyof typeof REFUSALS;

export class Refusal extends Error {
  constructor(
    readonly code: RefusalCode,
    /** Extra precision for the log and audit (never message content). */
    readonly detail?: string,
  ) {
    super(`${REFUSALS[code].en}${detail ? ` (${detail})` : ''}`);
    this.name = 'Refusal';
  }

  get smtpCode(): number {
    return REFUSALS[this.code].smtp;
  }

  /** One-line SMTP reply text: enhanced code, English then French, and the code name. */
  get smtpText(): string {
    const r = REFUSALS[this.code];
    return `${r.enhanced} ${r.en} / ${r.fr} [${this.code}]`;
  }
}

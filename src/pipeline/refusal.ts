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
  // Patient mailboxes (src/policy/patients.ts): texts a patient reads, in plain words.
  'patient-not-a-reply': {
    smtp: 550,
    enhanced: '5.7.1',
    fr: "Vous ne pouvez pas commencer une conversation : seul un professionnel de santé peut vous écrire en premier. Répondez à un message qu'il vous a envoyé.",
    en: 'You cannot start a conversation: only a health professional can write first. Reply to a message one sent you.',
  },
  'patient-unknown-thread': {
    smtp: 550,
    enhanced: '5.7.1',
    fr: "Ce message ne répond à aucun message qu'un professionnel de santé vous a envoyé : il n'a pas été envoyé.",
    en: 'This message does not answer any message a health professional sent you, so it was not sent.',
  },
  'patient-thread-closed': {
    smtp: 550,
    enhanced: '5.7.1',
    fr: 'Le professionnel de santé a clos cette conversation : vous ne pouvez plus y répondre.',
    en: 'The health professional closed this conversation: you can no longer reply to it.',
  },
  'patient-reply-recipients': {
    smtp: 550,
    enhanced: '5.7.1',
    fr: "Votre réponse ne peut être adressée qu'au professionnel de santé qui vous a écrit (ou à l'adresse de réponse qu'il a indiquée), sans autre destinataire.",
    en: 'Your reply may only go to the health professional who wrote to you (or the reply address they gave), with no other recipient.',
  },
  'patient-sender-not-professional': {
    smtp: 550,
    enhanced: '5.7.1',
    fr: "Seuls les professionnels de santé (boîte personnelle, organisationnelle ou applicative vérifiée dans l'annuaire) peuvent écrire à un patient",
    en: 'Only health professionals (a personal, organisational or applicative mailbox checked against the directory) may write to a patient',
  },
  'patient-opposed': {
    smtp: 550,
    enhanced: '5.2.1',
    fr: "Le patient s'est opposé à l'ouverture de sa messagerie de santé : le message ne peut pas lui être remis",
    en: 'The patient opposed to the opening of their health mailbox: the message cannot be delivered to them',
  },
  'patient-document-mismatch': {
    smtp: 550,
    enhanced: '5.7.1',
    fr: "Un document joint concerne un autre patient que le destinataire (INS du document différent ou absent) : le message n'a pas été remis",
    en: "An attached document is about another patient than the recipient (the document's INS differs or is missing): the message was not delivered",
  },
  'patient-documents-several-patients': {
    smtp: 550,
    enhanced: '5.7.1',
    fr: "Un message portant des documents ne peut être adressé qu'à un seul patient",
    en: 'A message carrying documents may be addressed to one patient only',
  },
  'unknown-recipient': { smtp: 550, enhanced: '5.1.1', fr: 'Destinataire inconnu', en: 'No such recipient here' },
  'recipient-disabled': { smtp: 550, enhanced: '5.2.1', fr: 'Boîte du destinataire désactivée', en: 'Recipient mailbox is disabled' },
  'mailbox-full': { smtp: 552, enhanced: '5.2.2', fr: 'Boîte du destinataire pleine (quota atteint)', en: 'Recipient mailbox is full (quota reached)' },
  'remote-domain-not-allowed': {
    smtp: 550,
    enhanced: '5.7.1',
    fr: "Domaine hors de l'espace de confiance de cet opérateur : l'envoi vers d'autres opérateurs n'est pas encore ouvert",
    en: "Domain is outside this operator's trust space: relaying to other operators is not enabled",
  },
  // Mail to other operators (src/pipeline/route.ts, src/pipeline/outbound.ts).
  'domain-not-in-trust-space': {
    smtp: 550,
    enhanced: '5.7.1',
    fr: "Domaine du destinataire hors de l'espace de confiance MSSanté : aucun opérateur de confiance ne le dessert, le message ne peut pas y être envoyé",
    en: 'The recipient domain is not in the MSSanté trust space: no trusted operator serves it, so mail cannot be sent there',
  },
  'remote-recipient-no-certificate': {
    smtp: 550,
    enhanced: '5.7.5',
    fr: "Chiffrement obligatoire : aucun certificat de chiffrement n'est connu pour ce destinataire d'un autre opérateur, le message n'a pas été envoyé",
    en: 'Encryption is required: no encryption certificate is known for this recipient at another operator, so the message was not sent',
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
  'security-malformed': {
    smtp: 554,
    enhanced: '5.7.5',
    fr: 'Message chiffré ou signé illisible (structure S/MIME ou OpenPGP invalide)',
    en: 'Unreadable encrypted or signed message (invalid S/MIME or OpenPGP structure)',
  },
  'security-weak-algorithm': {
    smtp: 550,
    enhanced: '5.7.6',
    fr: 'Algorithme cryptographique refusé (MD5, SHA-1, 3DES ou non pris en charge)',
    en: 'Cryptographic algorithm refused (MD5, SHA-1, 3DES or unsupported)',
  },
  'security-weak-key': { smtp: 550, enhanced: '5.7.6', fr: 'Clé trop faible (RSA de moins de 2048 bits)', en: 'Key too weak (RSA under 2048 bits)' },
  'security-bad-signature': {
    smtp: 550,
    enhanced: '5.7.7',
    fr: 'Signature invalide : le message a été modifié après sa signature',
    en: 'Invalid signature: the message was changed after it was signed',
  },
  'security-tampered': {
    smtp: 550,
    enhanced: '5.7.7',
    fr: "Les en-têtes visibles ne correspondent pas au message signé (falsification)",
    en: 'The visible headers do not match the signed message (tampering)',
  },
  'security-untrusted': {
    smtp: 550,
    enhanced: '5.7.5',
    fr: "Certificat non reconnu : il ne dépend d'aucune autorité de confiance ou n'est pas prévu pour cet usage",
    en: 'Certificate not trusted: it chains to no trusted authority or is not meant for this use',
  },
  'security-cert-expired': { smtp: 550, enhanced: '5.7.5', fr: 'Certificat expiré', en: 'Certificate expired' },
  'security-cert-not-yet-valid': { smtp: 550, enhanced: '5.7.5', fr: 'Certificat pas encore valide', en: 'Certificate not yet valid' },
  'security-cert-revoked': { smtp: 550, enhanced: '5.7.5', fr: 'Certificat révoqué', en: 'Certificate revoked' },
  'security-revocation-unknown': {
    smtp: 451,
    enhanced: '4.7.5',
    fr: 'Impossible de vérifier la révocation du certificat pour le moment, réessayez plus tard',
    en: 'Certificate revocation cannot be checked right now, try again later',
  },
  'security-identity-mismatch': {
    smtp: 550,
    enhanced: '5.7.1',
    fr: "Le certificat du signataire ne correspond pas à l'adresse de l'expéditeur",
    en: "The signer's certificate does not match the sender address",
  },
  'security-cannot-decrypt': {
    smtp: 550,
    enhanced: '5.7.5',
    fr: "Message impossible à déchiffrer avec les clés du destinataire",
    en: "The message cannot be decrypted with the recipient's keys",
  },
  'security-not-signed': { smtp: 550, enhanced: '5.7.5', fr: 'Message non signé : une signature est exigée', en: 'Message not signed: a signature is required' },
  'security-not-encrypted': { smtp: 550, enhanced: '5.7.5', fr: 'Message non chiffré : le chiffrement est exigé', en: 'Message not encrypted: encryption is required' },
  'security-no-recipient-certificate': {
    smtp: 550,
    enhanced: '5.7.5',
    fr: "Aucun certificat de chiffrement connu pour ce destinataire",
    en: 'No encryption certificate is known for this recipient',
  },
  'security-no-signing-credential': {
    smtp: 550,
    enhanced: '5.7.5',
    fr: "Aucun certificat de signature valide pour votre boîte",
    en: 'Your mailbox has no valid signing certificate',
  },
  // Sender checks against the practitioner directory (src/pipeline/check-directory.ts).
  'sender-not-in-directory': {
    smtp: 550,
    enhanced: '5.7.1',
    fr: "Adresse de l'expéditeur absente de l'annuaire des messageries de santé",
    en: "The sender's address is not in the health messaging directory",
  },
  'sender-unknown-practitioner': {
    smtp: 550,
    enhanced: '5.7.1',
    fr: "Le professionnel titulaire de cette boîte est inconnu de l'annuaire des professionnels de santé",
    en: "The practitioner who owns this mailbox is not in the health professional directory",
  },
  'sender-inactive-practitioner': {
    smtp: 550,
    enhanced: '5.7.1',
    fr: "Le professionnel titulaire de cette boîte n'est plus en exercice selon l'annuaire des professionnels de santé",
    en: 'The practitioner who owns this mailbox is no longer active in the health professional directory',
  },
  'signer-not-directory-owner': {
    smtp: 550,
    enhanced: '5.7.1',
    fr: "Le signataire du message n'est pas le titulaire de l'adresse de l'expéditeur dans l'annuaire",
    en: "The message's signer is not the directory owner of the sender address",
  },
  'invalid-owner-identifier': {
    smtp: 550,
    enhanced: '5.7.1',
    fr: "Identifiant national du titulaire invalide (8 + RPPS ou 0 + ADELI, 1 + FINESS, 2 + SIREN, 3 + SIRET, INS)",
    en: "Invalid national identifier of the owner (8 + RPPS or 0 + ADELI, 1 + FINESS, 2 + SIREN, 3 + SIRET, INS)",
  },
  // Structured documents in IHE XDM archives (src/pipeline/xdm-documents.ts).
  'xdm-integrity': {
    smtp: 550,
    enhanced: '5.6.0',
    fr: "Document de l'archive IHE_XDM altéré ou absent : sa taille ou son empreinte SHA-1 ne correspond pas à METADATA.XML",
    en: 'A document of the IHE_XDM archive is altered or missing: its size or SHA-1 hash does not match METADATA.XML',
  },
  'xdm-refused': {
    smtp: 554,
    enhanced: '5.6.0',
    fr: "Archive IHE_XDM refusée : illisible, dangereuse (bombe zip, chemin hors de l'archive, entités XML) ou au-delà des limites",
    en: 'IHE_XDM archive refused: unreadable, unsafe (zip bomb, path outside the archive, XML entities) or over the limits',
  },
  // The inbound relay between operators (src/smtp/relay.ts, src/pipeline/relay.ts).
  'relay-tls-required': {
    smtp: 530,
    enhanced: '5.7.0',
    fr: 'Commencez par STARTTLS : le relais entre opérateurs exige TLS',
    en: 'Must issue a STARTTLS command first: relaying between operators requires TLS',
  },
  'relay-certificate-required': {
    smtp: 530,
    enhanced: '5.7.0',
    fr: "Certificat client TLS exigé : un opérateur s'authentifie avec le certificat serveur de l'espace de confiance",
    en: 'A TLS client certificate is required: an operator authenticates with its trust-space server certificate',
  },
  'relay-untrusted-certificate': {
    smtp: 550,
    enhanced: '5.7.5',
    fr: "Certificat client TLS non reconnu : il ne dépend pas des autorités de l'espace de confiance ou n'est pas prévu pour l'authentification TLS",
    en: 'TLS client certificate not trusted: it does not chain to the trust space authorities or is not meant for TLS client authentication',
  },
  'relay-certificate-expired': { smtp: 550, enhanced: '5.7.5', fr: 'Certificat client TLS expiré', en: 'TLS client certificate expired' },
  'relay-certificate-not-yet-valid': { smtp: 550, enhanced: '5.7.5', fr: 'Certificat client TLS pas encore valide', en: 'TLS client certificate not yet valid' },
  'relay-certificate-revoked': { smtp: 550, enhanced: '5.7.5', fr: 'Certificat client TLS révoqué', en: 'TLS client certificate revoked' },
  'relay-revocation-unknown': {
    smtp: 451,
    enhanced: '4.7.5',
    fr: 'Impossible de vérifier la révocation du certificat client TLS pour le moment, réessayez plus tard',
    en: 'The revocation of the TLS client certificate cannot be checked right now, try again later',
  },
  'relay-no-trust-list': {
    smtp: 451,
    enhanced: '4.3.5',
    fr: "Espace de confiance pas encore chargé chez cet opérateur (liste des domaines ou autorités), réessayez plus tard",
    en: "This operator has not loaded the trust space yet (domain list or authorities), try again later",
  },
  'relay-unknown-domain': {
    smtp: 550,
    enhanced: '5.7.1',
    fr: "Domaine de l'expéditeur absent de l'espace de confiance (liste blanche des opérateurs)",
    en: "The sender's domain is not in the trust space (operator whitelist)",
  },
  'relay-dn-mismatch': {
    smtp: 550,
    enhanced: '5.7.1',
    fr: "Le certificat client TLS n'est pas celui que l'espace de confiance désigne pour le domaine de l'expéditeur (DNCertificatOperateur)",
    en: "The TLS client certificate is not the one the trust space names for the sender's domain (DNCertificatOperateur)",
  },
  'relay-recipient-not-local': {
    smtp: 550,
    enhanced: '5.7.1',
    fr: "Relais refusé : le domaine du destinataire n'est pas hébergé par cet opérateur",
    en: 'Relaying denied: the recipient domain is not hosted by this operator',
  },
  'relay-auth-not-offered': {
    smtp: 502,
    enhanced: '5.5.1',
    fr: "AUTH n'est pas proposé sur ce port : les opérateurs s'authentifient par leur certificat client TLS",
    en: 'AUTH is not offered on this listener: operators authenticate with their TLS client certificate',
  },
  'relay-bad-idempotency-key': {
    smtp: 550,
    enhanced: '5.6.0',
    fr: "En-tête X-MSS-Idempotency-Key invalide : une seule valeur de 1 à 128 lettres, chiffres, « . », « _ », « : » ou « - »",
    en: 'Invalid X-MSS-Idempotency-Key header: one value of 1 to 128 letters, digits, ".", "_", ":" or "-"',
  },
} as const satisfies Record<string, { smtp: number; enhanced: string; fr: string; en: string }>;

export type RefusalCode = keyof typeof REFUSALS;

/**
 * The refusals an application mailbox reports in an error MDN instead of an SMTP refusal, when the sender asked
 * for MDNs (src/pipeline/receipts.ts): `processed/Error: <code>^<label>`, subject `[KO Intégration système !][<code>] …`.
 * Codes from HL7 table 0357 (messageErrorCondition), which the ANS volet "Transmission de documents CDA … courriel
 * MSSanté" (error-codes.md) uses: 207 "Application internal error" is its generic application error (the volet's
 * negative acknowledgement pairs it with the precise cause), 102 "Data type error" a content that cannot be read as
 * what it claims to be, 204 "Unknown key identifier" a document whose patient identifier (INS) is not the recipient's.
 * The label names the cause in French, then English.
 */
export const INTEGRATION_ERRORS: Partial<Record<RefusalCode, { code: string; label: string }>> = {
  'xdm-integrity': {
    code: '207',
    label: "Document IHE_XDM altéré ou absent : taille ou empreinte SHA-1 différente de METADATA.XML / IHE_XDM document altered or missing: size or SHA-1 differs from METADATA.XML",
  },
  'patient-document-mismatch': {
    code: '204',
    label: "Patient du document différent du destinataire (INS) / The document's patient differs from the recipient (INS)",
  },
  'patient-documents-several-patients': {
    code: '204',
    label: 'Documents adressés à plusieurs patients / Documents addressed to several patients',
  },
  'xdm-refused': {
    code: '102',
    label: 'Archive IHE_XDM illisible, dangereuse ou au-delà des limites / IHE_XDM archive unreadable, unsafe or over the limits',
  },
};

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

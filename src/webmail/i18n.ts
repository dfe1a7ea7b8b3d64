/**
 * The webmail's texts: French first (patients and clinicians read French), English available. One table, so a
 * missing translation is a type error rather than a blank on screen.
 */

export const LANGS = ['fr', 'en'] as const;
export type Lang = (typeof LANGS)[number];

export function langOf(value: string | null | undefined): Lang | null {
  return LANGS.find((l) => l === value) ?? null;
}

const TEXTS = {
  appName: { fr: 'Messagerie sécurisée de santé', en: 'Secure health messaging' },
  skip: { fr: 'Aller au contenu', en: 'Skip to content' },
  otherLang: { fr: 'English', en: 'Français' },
  otherLangLabel: { fr: 'Read in English', en: 'Lire en français' },
  loggedInAs: { fr: 'Connecté en tant que', en: 'Logged in as' },
  logout: { fr: 'Se déconnecter', en: 'Log out' },
  mainNav: { fr: 'Navigation principale', en: 'Main navigation' },
  folders: { fr: 'Dossiers', en: 'Folders' },
  unread: { fr: 'non lus', en: 'unread' },
  INBOX: { fr: 'Boîte de réception', en: 'Inbox' },
  Sent: { fr: 'Messages envoyés', en: 'Sent' },
  Trash: { fr: 'Corbeille', en: 'Trash' },
  compose: { fr: 'Nouveau message', en: 'New message' },
  documents: { fr: 'Mes documents', en: 'My documents' },
  history: { fr: 'Qui a consulté mes messages', en: 'Who accessed my messages' },
  // Login
  loginTitle: { fr: 'Connexion', en: 'Log in' },
  loginIntro: {
    fr: 'Patients : votre adresse de messagerie ou votre matricule INS (15 chiffres). Professionnels : votre adresse MSSanté.',
    en: 'Patients: your mail address or your INS number (15 digits). Professionals: your MSSanté address.',
  },
  addressOrIns: { fr: 'Adresse ou matricule INS', en: 'Address or INS number' },
  password: { fr: 'Mot de passe', en: 'Password' },
  loginButton: { fr: 'Se connecter', en: 'Log in' },
  firstLogin: { fr: 'Première connexion ? Activez votre messagerie', en: 'First time? Activate your mailbox' },
  badCredentials: { fr: 'Identifiant ou mot de passe incorrect.', en: 'Wrong address or password.' },
  lockedOut: {
    fr: 'Trop de tentatives échouées : réessayez dans quelques minutes.',
    en: 'Too many failed attempts: try again in a few minutes.',
  },
  mailboxNotActive: {
    fr: "Cette messagerie n'est pas active : activez-la avec le code reçu, ou contactez votre établissement.",
    en: 'This mailbox is not active: activate it with the code you received, or contact your care provider.',
  },
  totpTitle: { fr: 'Code de vérification', en: 'Verification code' },
  totpIntro: {
    fr: "Saisissez le code à 6 chiffres affiché par votre application d'authentification.",
    en: 'Enter the 6-digit code shown by your authenticator app.',
  },
  totpCode: { fr: 'Code à 6 chiffres', en: '6-digit code' },
  verify: { fr: 'Vérifier', en: 'Verify' },
  badTotp: { fr: 'Code incorrect ou expiré.', en: 'Wrong or expired code.' },
  sessionExpired: { fr: 'Votre session a expiré : reconnectez-vous.', en: 'Your session has expired: please log in again.' },
  // Activation
  activateTitle: { fr: 'Activer ma messagerie', en: 'Activate my mailbox' },
  activateIntro: {
    fr: "Saisissez votre matricule INS (ou votre adresse) et le code d'activation reçu de votre établissement de santé.",
    en: 'Enter your INS number (or your address) and the activation code your care provider gave you.',
  },
  activationCode: { fr: "Code d'activation", en: 'Activation code' },
  continue: { fr: 'Continuer', en: 'Continue' },
  enrolTitle: { fr: 'Choisir un mot de passe et enregistrer le second facteur', en: 'Choose a password and set up the second factor' },
  enrolIntro: {
    fr: "Scannez ce QR code avec une application d'authentification (TOTP), ou saisissez la clé à la main, puis entrez le code qu'elle affiche.",
    en: 'Scan this QR code with an authenticator app (TOTP), or type the key by hand, then enter the code it shows.',
  },
  qrAlt: { fr: "QR code à scanner avec votre application d'authentification", en: 'QR code to scan with your authenticator app' },
  manualKey: { fr: 'Clé à saisir à la main', en: 'Key to type by hand' },
  newPassword: { fr: 'Nouveau mot de passe (10 caractères au moins)', en: 'New password (at least 10 characters)' },
  confirmPassword: { fr: 'Confirmer le mot de passe', en: 'Confirm the password' },
  passwordsDiffer: { fr: 'Les deux mots de passe diffèrent.', en: 'The two passwords differ.' },
  activateButton: { fr: 'Activer ma messagerie', en: 'Activate my mailbox' },
  opposeTitle: { fr: "Je ne souhaite pas de messagerie de santé", en: 'I do not want a health mailbox' },
  opposeIntro: {
    fr: 'Vous pouvez vous opposer à la création de votre messagerie. Elle sera fermée et les messages en attente détruits.',
    en: 'You may oppose the creation of your mailbox. It will be closed and the messages held for you destroyed.',
  },
  opposeButton: { fr: "Je m'oppose à ma messagerie", en: 'I oppose my mailbox' },
  opposed: {
    fr: 'Votre opposition est enregistrée : votre messagerie est fermée.',
    en: 'Your opposition is recorded: your mailbox is closed.',
  },
  // Folder
  search: { fr: 'Rechercher', en: 'Search' },
  searchLabel: { fr: 'Rechercher dans ce dossier (objet, expéditeur, destinataire)', en: 'Search this folder (subject, sender, recipient)' },
  noMessages: { fr: 'Aucun message.', en: 'No messages.' },
  from: { fr: 'De', en: 'From' },
  to: { fr: 'À', en: 'To' },
  cc: { fr: 'Copie', en: 'Cc' },
  subject: { fr: 'Objet', en: 'Subject' },
  date: { fr: 'Date', en: 'Date' },
  noSubject: { fr: '(sans objet)', en: '(no subject)' },
  unreadMark: { fr: 'Non lu', en: 'Unread' },
  previous: { fr: 'Page précédente', en: 'Previous page' },
  next: { fr: 'Page suivante', en: 'Next page' },
  messagesIn: { fr: 'Messages du dossier', en: 'Messages in folder' },
  // Message
  attachments: { fr: 'Pièces jointes', en: 'Attachments' },
  download: { fr: 'Télécharger', en: 'Download' },
  viewDocuments: { fr: 'Voir les documents', en: 'View documents' },
  remoteBlocked: {
    fr: 'Des contenus distants (images, liens de suivi) ont été bloqués pour protéger votre vie privée.',
    en: 'Remote content (images, tracking links) was blocked to protect your privacy.',
  },
  reply: { fr: 'Répondre', en: 'Reply' },
  replyNotAllowed: { fr: 'Réponse impossible', en: 'Reply not possible' },
  delete: { fr: 'Mettre à la corbeille', en: 'Move to trash' },
  restore: { fr: 'Restaurer', en: 'Restore' },
  receiptAsked: {
    fr: "L'expéditeur demande un accusé de lecture. Voulez-vous l'envoyer ?",
    en: 'The sender asks for a read receipt. Do you want to send it?',
  },
  sendReceipt: { fr: "Envoyer l'accusé de lecture", en: 'Send the read receipt' },
  receiptSent: { fr: 'Accusé de lecture envoyé.', en: 'Read receipt sent.' },
  backToFolder: { fr: 'Retour au dossier', en: 'Back to the folder' },
  actions: { fr: 'Actions', en: 'Actions' },
  messageNotFound: { fr: 'Message introuvable.', en: 'Message not found.' },
  notFound: { fr: 'Page introuvable.', en: 'Page not found.' },
  forbidden: { fr: 'Accès refusé.', en: 'Access denied.' },
  badRequest: { fr: 'Demande invalide.', en: 'Invalid request.' },
  csrfFailed: {
    fr: 'Le formulaire a expiré ou ne vient pas de cette page : rechargez-la et recommencez.',
    en: 'The form expired or did not come from this page: reload it and try again.',
  },
  tooLarge: { fr: 'Envoi trop volumineux.', en: 'Upload too large.' },
  serverError: { fr: 'Erreur du serveur, réessayez plus tard.', en: 'Server error, please try again later.' },
  // Compose
  composeTitle: { fr: 'Écrire un message', en: 'Write a message' },
  replyTitle: { fr: 'Répondre', en: 'Reply' },
  toHint: { fr: 'Adresses séparées par des virgules ; tapez un nom pour chercher dans l’annuaire.', en: 'Addresses separated by commas; type a name to search the directory.' },
  body: { fr: 'Message', en: 'Message' },
  attach: { fr: 'Joindre des fichiers', en: 'Attach files' },
  requestReceipt: { fr: 'Demander un accusé de lecture', en: 'Request a read receipt' },
  closeThread: {
    fr: 'Clore la conversation (le patient ne pourra plus répondre)',
    en: 'Close the conversation (the patient will not be able to reply)',
  },
  send: { fr: 'Envoyer', en: 'Send' },
  sent: { fr: 'Message envoyé.', en: 'Message sent.' },
  sendRefused: { fr: "Le message n'a pas été envoyé", en: 'The message was not sent' },
  patientCannotCompose: {
    fr: 'Un patient ne peut pas écrire le premier : vous pouvez répondre à un message que votre professionnel de santé vous a envoyé.',
    en: 'A patient cannot write first: you can reply to a message your health professional sent you.',
  },
  noRecipients: { fr: 'Indiquez au moins un destinataire valide.', en: 'Enter at least one valid recipient.' },
  // Documents
  saveDocument: { fr: 'Enregistrer dans mes documents', en: 'Save to my documents' },
  documentSaved: { fr: 'Document enregistré dans vos documents.', en: 'Document saved to your documents.' },
  noDocuments: { fr: 'Aucun document enregistré.', en: 'No saved documents.' },
  documentNotFound: { fr: 'Document introuvable.', en: 'Document not found.' },
  documentsIn: { fr: "Documents de l'archive", en: 'Documents in the archive' },
  kind_lab: { fr: 'Biologie', en: 'Lab results' },
  kind_report: { fr: 'Comptes rendus', en: 'Reports' },
  kind_imaging: { fr: 'Imagerie', en: 'Imaging' },
  kind_prescription: { fr: 'Prescriptions', en: 'Prescriptions' },
  kind_other: { fr: 'Autres', en: 'Other' },
  savedOn: { fr: 'Enregistré le', en: 'Saved on' },
  open: { fr: 'Ouvrir', en: 'Open' },
  // History
  historyIntro: {
    fr: 'Les accès à votre messagerie enregistrés dans le journal d’audit, du plus récent au plus ancien.',
    en: 'Accesses to your mailbox recorded in the audit journal, most recent first.',
  },
  who: { fr: 'Qui', en: 'Who' },
  what: { fr: 'Action', en: 'Action' },
  outcome: { fr: 'Résultat', en: 'Outcome' },
  via: { fr: 'Par', en: 'Via' },
  noHistory: { fr: 'Aucun accès enregistré.', en: 'No access recorded.' },
  you: { fr: 'vous', en: 'you' },
  action_login: { fr: 'Connexion', en: 'Login' },
  'action_login-failed': { fr: 'Connexion échouée', en: 'Failed login' },
  action_read: { fr: 'Lecture', en: 'Read' },
  action_deliver: { fr: 'Réception d’un message', en: 'Message received' },
  action_submit: { fr: 'Envoi', en: 'Send' },
  action_move: { fr: 'Déplacement', en: 'Move' },
  action_delete: { fr: 'Suppression', en: 'Deletion' },
  action_mdn: { fr: 'Accusé de réception', en: 'Receipt' },
  'action_mailbox-create': { fr: 'Création de la messagerie', en: 'Mailbox created' },
  'action_patient-activation-code': { fr: "Code d'activation émis", en: 'Activation code issued' },
  'action_patient-activate': { fr: 'Activation', en: 'Activation' },
  'action_patient-totp': { fr: 'Code de vérification', en: 'Verification code' },
  'action_patient-oppose': { fr: 'Opposition', en: 'Opposition' },
  action_other: { fr: 'Autre', en: 'Other' },
} as const satisfies Record<string, Record<Lang, string>>;

export type TextKey = keyof typeof TEXTS;

export function t(lang: Lang, key: TextKey): string {
  return TEXTS[key][lang];
}

/** Whether a string is a key of the table (for names computed at run time, such as folder names). */
export function isTextKey(key: string): key is TextKey {
  return Object.hasOwn(TEXTS, key);
}

export function formatDate(lang: Lang, ms: number): string {
  return new Intl.DateTimeFormat(lang === 'fr' ? 'fr-FR' : 'en-GB', { dateStyle: 'medium', timeStyle: 'short', timeZone: 'Europe/Paris' }).format(ms);
}

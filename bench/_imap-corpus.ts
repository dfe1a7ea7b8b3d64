/**
 * The IMAP bench's mailbox contents, generated deterministically so that both servers hold the same messages:
 * 2–10 KB clinical-looking mail (varied senders, subjects, dates, Cc, replies; a fifth multipart with a small
 * base64 PDF-like attachment), CRLF line endings, plus flags and an internal date per message.
 *
 * Two search terms are planted at known places, so that the bench can check that both servers find the same
 * messages (and the right ones): SUBJECT_TERM in the Subject of every SUBJECT_EVERY-th message, BODY_TERM in the
 * text of every BODY_EVERY-th message. Neither word occurs anywhere else (the vocabulary does not contain them).
 */

export interface BenchMessage {
  raw: Buffer;
  /** IMAP system flags, e.g. `\Seen`. */
  flags: string[];
  /** ms since epoch */
  internalDate: number;
}

export const SUBJECT_TERM = 'Pneumothorax';
export const BODY_TERM = 'hyperkaliemie';
export const SUBJECT_EVERY = 200;
export const BODY_EVERY = 100;

/** How many of the first `count` messages carry each planted term (the expected SEARCH hit counts). */
export function expectedHits(count: number): { subject: number; body: number } {
  return { subject: Math.floor(count / SUBJECT_EVERY), body: Math.floor(count / BODY_EVERY) };
}

/** mulberry32: small, fast, good enough to vary content; seeded per message so any message can be rebuilt alone. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FIRST = ['Jean', 'Claire', 'Sophie', 'Pierre', 'Nathalie', 'Luc', 'Isabelle', 'Marc', 'Camille', 'Thomas', 'Julie', 'Antoine', 'Emma', 'Hugo', 'Chloe', 'Louis'];
const LAST = ['Dupont', 'Martin', 'Bernard', 'Petit', 'Durand', 'Leroy', 'Moreau', 'Simon', 'Laurent', 'Lefebvre', 'Michel', 'Garcia', 'David', 'Bertrand', 'Roux', 'Vincent'];
const DOMAINS = ['hopital-demo.mssante.test', 'chu-exemple.mssante.test', 'clinique-sud.mssante.test', 'labo-analyses.mssante.test'];
const TOPICS = [
  'Compte rendu d\'hospitalisation',
  'Resultats biologiques',
  'Demande d\'avis cardiologique',
  'Lettre de liaison',
  'Compte rendu operatoire',
  'Ordonnance de sortie',
  'Bilan radiologique',
  'Consultation de suivi',
  'Resultats anatomopathologiques',
  'Demande de rendez-vous',
];
const WORDS = (
  'patient patiente examen clinique antecedents traitement posologie comprime matin soir biologie hemoglobine ' +
  'creatinine glycemie tension arterielle frequence cardiaque auscultation pulmonaire abdomen souple indolore ' +
  'radiographie thoracique scanner echographie normale anomalie suivi controle semaines consultation medecin ' +
  'traitant infirmier kinesitherapie reeducation sortie domicile hospitalisation service urgence chirurgie ' +
  'anesthesie allergie penicilline diabete hypertension insuffisance renale cardiaque respiratoire douleur ' +
  'fievre toux dyspnee oedeme membres inferieurs bilan complementaire prescription renouvellement arret ' +
  'evolution favorable surveillance rendez-vous confrere cordialement dossier compte rendu resultats'
).split(' ');

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!;
}

function sentence(r: () => number): string {
  const n = 6 + Math.floor(r() * 14);
  const words: string[] = [];
  for (let i = 0; i < n; i++) words.push(pick(r, WORDS));
  const s = words.join(' ');
  return s[0]!.toUpperCase() + s.slice(1) + '.';
}

/** Wraps text at 76 columns, CRLF. */
function wrap(text: string): string {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line.length + word.length + 1 > 76) {
      out.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) out.push(line);
  return out.join('\r\n');
}

const BASE = Date.UTC(2025, 0, 6, 8, 0, 0);

/**
 * Message `i` (0-based) of the mailbox `to`: the same `i` gives the same bytes, flags and date for any mailbox
 * (only the To header differs). Internal dates increase with `i` (about 7 minutes apart).
 */
export function benchMessage(i: number, to: string): BenchMessage {
  const r = rng(i * 2654435761 + 12345);
  const first = pick(r, FIRST);
  const last = pick(r, LAST);
  const domain = pick(r, DOMAINS);
  const from = `Dr ${first} ${last.toUpperCase()} <${first.toLowerCase()}.${last.toLowerCase()}@${domain}>`;
  const internalDate = BASE + i * 420_000 + Math.floor(r() * 60_000);
  const date = new Date(internalDate - 5_000 - Math.floor(r() * 120_000));
  const patient = `${pick(r, LAST).toUpperCase()} ${pick(r, FIRST)}`;
  const reply = r() < 0.25;
  const plantedSubject = (i + 1) % SUBJECT_EVERY === 0;
  const plantedBody = (i + 1) % BODY_EVERY === 0;
  const topic = plantedSubject ? `${pick(r, TOPICS)} - suspicion de ${SUBJECT_TERM}` : pick(r, TOPICS);
  const subject = `${reply ? 'RE: ' : ''}${topic} - ${patient} (dossier ${100000 + ((i * 7919) % 900000)})`;
  const target = 2048 + Math.floor(r() * 8192); // 2-10 KB
  const head = [
    `Return-Path: <${first.toLowerCase()}.${last.toLowerCase()}@${domain}>`,
    `Received: from mail.${domain} (mail.${domain} [192.0.2.${1 + (i % 250)}])\r\n\tby mx.hopital-demo.mssante.test with ESMTPS id ${(i * 48271).toString(36)}\r\n\tfor <${to}>; ${date.toUTCString().replace('GMT', '+0000')}`,
    `Date: ${date.toUTCString().replace('GMT', '+0000')}`,
    `From: ${from}`,
    `To: <${to}>`,
    ...(r() < 0.3 ? [`Cc: ${pick(r, FIRST)} ${pick(r, LAST)} <secretariat.${pick(r, LAST).toLowerCase()}@${pick(r, DOMAINS)}>`] : []),
    `Subject: ${subject}`,
    `Message-ID: <${i}.${(i * 2654435761 >>> 0).toString(16)}@${domain}>`,
    ...(reply ? [`In-Reply-To: <${Math.max(0, i - 1 - Math.floor(r() * 50))}.bench@${domain}>`, `References: <${Math.max(0, i - 1 - Math.floor(r() * 50))}.bench@${domain}>`] : []),
    'MIME-Version: 1.0',
    'X-Mailer: Bench MUA 1.0',
  ];
  let text = `Cher confrere,\r\n\r\nJe vous adresse ${topic.toLowerCase()} concernant ${patient}.\r\n\r\n`;
  const attachment = r() < 0.2;
  const textTarget = attachment ? Math.max(800, target - 3000) : target;
  const plantAt = plantedBody ? 200 + Math.floor(r() * Math.max(1, textTarget - 600)) : -1;
  let planted = !plantedBody;
  const headLength = head.join('\r\n').length;
  while (headLength + text.length < textTarget) {
    let para = '';
    for (let s = 0; s < 3 + Math.floor(r() * 4); s++) para += (para ? ' ' : '') + sentence(r);
    if (!planted && text.length >= plantAt) {
      para += ` Kaliemie a 6,2 mmol/l : ${BODY_TERM} moderee a controler.`;
      planted = true;
    }
    text += wrap(para) + '\r\n\r\n';
  }
  if (!planted) text += `Kaliemie a 6,2 mmol/l : ${BODY_TERM} moderee a controler.\r\n\r\n`;
  text += `Bien confraternellement,\r\nDr ${first} ${last.toUpperCase()}\r\n`;
  let raw: string;
  if (attachment) {
    const boundary = `=_bench_${i.toString(36)}`;
    const bin = Buffer.alloc(2000);
    for (let k = 0; k < bin.length; k++) bin[k] = Math.floor(r() * 256);
    const b64 = bin.toString('base64').replace(/.{1,76}/g, (l) => `${l}\r\n`);
    raw =
      [...head, `Content-Type: multipart/mixed; boundary="${boundary}"`, '', 'This is a multi-part message in MIME format.', `--${boundary}`,
        'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit', '', text,
        `--${boundary}`, `Content-Type: application/pdf; name="cr-${i}.pdf"`, 'Content-Transfer-Encoding: base64', `Content-Disposition: attachment; filename="cr-${i}.pdf"`, '',
        b64 + `--${boundary}--`, ''].join('\r\n');
  } else {
    raw = [...head, 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit', '', text].join('\r\n');
  }
  const flags: string[] = [];
  const f = r();
  if (f < 0.7) flags.push('\\Seen');
  if (f < 0.1) flags.push('\\Answered');
  if (r() < 0.05) flags.push('\\Flagged');
  return { raw: Buffer.from(raw, 'utf8'), flags, internalDate };
}

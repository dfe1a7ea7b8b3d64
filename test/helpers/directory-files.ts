import { createWriteStream } from 'node:fs';
import { once } from 'node:events';

/**
 * A generator of synthetic Annuaire Santé extraction files in exactly the public formats (tests and
 * bench/directory-import.ts): the 31-column "Extraction correspondance MSSanté" and the 56-column
 * "PS_LibreAcces_Personne_activite" (trailing `|` on every line), UTF-8, with accented names, empty fields,
 * valid RPPS / FINESS / SIRET keys. Deterministic: row `i` is always the same for the same seed, so a file can
 * be regenerated with a few rows changed, removed or added.
 *
 * Nothing here is real data: names are drawn from short lists, identifiers are computed.
 */

import { MSS_HEADER, PS_HEADER } from '../../src/directory/headers.js';

export { MSS_HEADER, PS_HEADER };

const LAST = ['MARTIN', 'BERNARD', 'DUBOIS', 'THOMAS', 'ROBERT', 'RICHARD', 'PETIT', 'DURAND', 'LEBRUN-CARPENTIER', "D'ARTAGNAN", 'MÜLLER', 'LEFÈVRE', 'GARÇON', 'NGUYỄN', 'DE LA FONTAINE', 'ÉLOI', 'CŒUR', 'FAURE', 'ROUSSEAU', 'BLANC'];
const FIRST = ['Jean', 'Hélène', 'Anaïs', 'Jérôme', 'Gaëlle', 'Ève', 'François', 'Zoé', 'Noël', 'Maïwenn', 'Loïc', 'Chloé', 'Sébastien', 'Agnès', 'Benoît', 'Céline', 'Léa', 'Raphaël', 'Inès', 'Théo'];
const PROFESSIONS: readonly [string, string, string][] = [
  ['10', 'Médecin', 'M'],
  ['21', 'Pharmacien', 'M'],
  ['40', 'Chirurgien-Dentiste', 'M'],
  ['50', 'Sage-Femme', 'M'],
  ['60', 'Infirmier', 'P'],
  ['70', 'Masseur-Kinésithérapeute', 'P'],
];
const SPECIALTIES: readonly [string, string][] = [
  ['SM26', 'Qualifié en Médecine Générale'],
  ['SM04', 'Cardiologie et maladies vasculaires'],
  ['SM54', 'Pédiatrie'],
  ['', ''],
];
const CITIES: readonly [string, string, string][] = [
  ['75013', 'Paris 13e', '75'],
  ['69003', 'Lyon 3e', '69'],
  ['13005', 'Marseille 5e', '13'],
  ['01000', 'Bourg-en-Bresse', '01'],
  ['97400', 'Saint-Denis', '974'],
  ['20000', 'Ajaccio', '2A'],
];
const ORG_KINDS = ['CENTRE HOSPITALIER', 'CLINIQUE', "MAISON DE SANTÉ PLURIPROFESSIONNELLE", 'LABORATOIRE', 'EHPAD LES TILLEULS', 'CENTRE DE SANTÉ'];
const SERVICES = ['Cardiologie', 'Urgences', 'Secrétariat médical', 'Pédiatrie', 'Laboratoire', 'Imagerie médicale', ''];

/** The digit that completes `digits` into a Luhn-valid number. */
export function luhnDigit(digits: string): string {
  let sum = 0;
  let double = true;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return String((10 - (sum % 10)) % 10);
}

/** The RPPS of practitioner `p` (11 digits, Luhn). */
export function rppsOf(p: number): string {
  const body = `1${String(p).padStart(9, '0')}`;
  return body + luhnDigit(body);
}

/** The FINESS of structure `s` (9 digits, Luhn), department-like prefix from the structure's city. */
export function finessOf(s: number): string {
  const dept = CITIES[s % CITIES.length]![2].replace('2A', '20').slice(0, 2);
  const body = `${dept}${String(s).padStart(6, '0')}`;
  return body + luhnDigit(body);
}

export function siretOf(s: number): string {
  const body = `4${String(s).padStart(12, '0')}`;
  return body + luhnDigit(body);
}

/** Small deterministic hash of an integer (row variety without a PRNG state). */
function mix(n: number, salt: number): number {
  let h = Math.imul(n ^ 0x9e3779b9, 0x85ebca6b) ^ salt;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

const pick = <T>(list: readonly T[], n: number, salt: number): T => list[mix(n, salt) % list.length]!;

export interface Practitioner {
  index: number;
  idNatPs: string;
  rpps: string;
  lastName: string;
  firstName: string;
  civility: ['M' | 'MME', string];
}

export function practitioner(p: number, seed = 0): Practitioner {
  const rpps = rppsOf(p);
  const female = mix(p, 7 + seed) % 2 === 0;
  return {
    index: p,
    idNatPs: `8${rpps}`,
    rpps,
    lastName: pick(LAST, p, 1 + seed),
    firstName: pick(FIRST, p, 2 + seed),
    civility: female ? ['MME', 'Madame'] : ['M', 'Monsieur'],
  };
}

/** Structures used by activities and mailboxes: a fixed pool. */
export const STRUCTURES = 20_000;

function structure(s: number): { finess: string; siret: string; name: string; city: readonly [string, string, string] } {
  return {
    finess: finessOf(s),
    siret: siretOf(s),
    name: `${ORG_KINDS[s % ORG_KINDS.length]} ${pick(LAST, s, 11)} ${s}`,
    city: CITIES[s % CITIES.length]!,
  };
}

/** Rows of the PS file for `rows` activities: practitioner p has 1 or 2 activities (about 1.25 rows each). */
export function* psRows(rows: number, options: { seed?: number; skip?: (row: number) => boolean; rename?: (row: number) => boolean } = {}): Generator<string> {
  const seed = options.seed ?? 0;
  let row = 0;
  for (let p = 0; row < rows; p++) {
    const who = practitioner(p, seed);
    const activities = mix(p, 3) % 4 === 0 ? 2 : 1;
    for (let a = 0; a < activities && row < rows; a++, row++) {
      if (options.skip?.(row)) continue;
      const [profCode, profLabel] = pick(PROFESSIONS, p, 4);
      const [sfCode, sfLabel] = profCode === '10' ? pick(SPECIALTIES, p, 5) : ['', ''];
      const liberal = mix(p * 2 + a, 6) % 3 === 0;
      const s = mix(p * 2 + a, 8) % STRUCTURES;
      const st = structure(s);
      const withStructure = mix(p * 2 + a, 9) % 10 !== 0; // one activity in ten has no structure (empty fields)
      const lastName = options.rename?.(row) ? `${who.lastName}-RENOMMÉ` : who.lastName;
      const f: string[] = new Array(PS_HEADER.length).fill('');
      f[0] = '8';
      f[1] = who.rpps;
      f[2] = who.idNatPs;
      f[5] = who.civility[0];
      f[6] = who.civility[1];
      f[7] = lastName;
      f[8] = who.firstName;
      f[9] = profCode;
      f[10] = profLabel;
      f[11] = 'C';
      f[12] = 'Civil';
      f[13] = sfCode ? 'S' : '';
      f[14] = sfCode ? 'Spécialité ordinale' : '';
      f[15] = sfCode;
      f[16] = sfLabel;
      f[17] = liberal ? 'L' : 'S';
      f[18] = liberal ? 'Libéral' : 'Salarié';
      if (withStructure) {
        f[19] = st.siret;
        f[21] = liberal ? '' : st.finess;
        f[22] = liberal ? '' : st.finess;
        f[23] = liberal ? `C${st.siret}` : `F${st.finess}`;
        f[24] = st.name;
        f[28] = String(1 + (s % 120));
        f[30] = 'R';
        f[31] = 'Rue';
        f[32] = `DES ${pick(['ÉCOLES', 'LILAS', 'PRÉS', 'ÎLES'], s, 12)}`;
        f[35] = st.city[0];
        f[37] = st.city[1];
        f[38] = '99000';
        f[39] = 'France';
        f[40] = `04${String(70000000 + s).slice(0, 8)}`;
        f[43] = mix(s, 13) % 5 === 0 ? `contact${s}@structure.test` : '';
        f[44] = st.city[2];
        f[47] = 'ARS/ARS/ARS';
        f[48] = liberal ? 'SA07' : 'SA01';
        f[49] = liberal ? 'Cabinet individuel' : 'Etablissement Public de santé';
      } else {
        f[47] = 'ARS//';
      }
      f.push(''); // the trailing '|'
      yield f.join('|');
    }
  }
}

/** The PER mailbox address of practitioner p. */
export function perAddress(p: number, seed = 0): string {
  const who = practitioner(p, seed);
  const plain = (s: string) =>
    s
      .normalize('NFD')
      .replace(/[\u0300-\u036f]/g, '')
      .replace(/[œŒ]/g, 'oe')
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '');
  return `${plain(who.firstName)}.${plain(who.lastName)}.${p}@ch-${p % 997}.mssante.test`;
}

/** Rows of the MSSanté file: 90 % PER mailboxes of practitioners, the rest ORG and APP mailboxes of structures. */
export function* mssRows(rows: number, options: { seed?: number; skip?: (row: number) => boolean; rename?: (row: number) => boolean } = {}): Generator<string> {
  const seed = options.seed ?? 0;
  for (let i = 0; i < rows; i++) {
    if (options.skip?.(i)) continue;
    const f: string[] = new Array(MSS_HEADER.length).fill('');
    const s = mix(i, 21) % STRUCTURES;
    const st = structure(s);
    const kind = i % 10;
    if (kind < 9) {
      const who = practitioner(i, seed);
      const [profCode, profLabel] = pick(PROFESSIONS, i, 4);
      const [sfCode, sfLabel] = profCode === '10' ? pick(SPECIALTIES, i, 5) : ['', ''];
      f[0] = 'PER';
      f[1] = perAddress(i, seed);
      f[2] = '8';
      f[3] = who.rpps;
      f[4] = who.idNatPs;
      f[8] = who.civility[0];
      f[9] = options.rename?.(i) ? `${who.lastName}-RENOMMÉ` : who.lastName;
      f[10] = who.firstName;
      f[11] = 'C';
      f[12] = 'Civil';
      f[13] = profCode;
      f[14] = profLabel;
      f[15] = sfCode;
      f[16] = sfLabel;
    } else {
      f[0] = i % 20 === 9 ? 'ORG' : 'APP';
      const service = pick(SERVICES, i, 22) || 'Accueil';
      f[1] = `${f[0] === 'ORG' ? 'secretariat' : 'dpi'}.${i}@etab-${s}.mssante.test`;
      f[7] = options.rename?.(i) ? `${service} (renommé)` : service;
    }
    const withStructure = f[0] !== 'PER' || mix(i, 23) % 3 !== 0;
    if (withStructure) {
      f[5] = '1';
      f[6] = `1${st.finess}`;
      f[18] = st.name;
      f[22] = String(1 + (s % 120));
      f[24] = 'R';
      f[25] = `DES ${pick(['ÉCOLES', 'LILAS', 'PRÉS', 'ÎLES'], s, 12)}`;
      f[27] = `${st.city[0]} ${st.city[1].toUpperCase()}`;
      f[28] = st.city[0];
      f[29] = st.city[2];
      f[30] = 'France';
    }
    f[17] = mix(i, 24) % 4 === 0 ? 'False' : 'True';
    yield f.join('|');
  }
}

/** Writes a header and lines to a file, honouring back-pressure. */
export async function writeLines(file: string, header: readonly string[], lines: Iterable<string>, trailingSeparator: boolean): Promise<void> {
  const out = createWriteStream(file, { highWaterMark: 1 << 20 });
  const done = new Promise<void>((resolve, reject) => {
    out.on('finish', resolve);
    out.on('error', reject);
  });
  let buffer = header.join('|') + (trailingSeparator ? '|' : '') + '\n';
  for (const line of lines) {
    buffer += line + '\n';
    if (buffer.length > 1 << 20) {
      if (!out.write(buffer)) await once(out, 'drain');
      buffer = '';
    }
  }
  out.end(buffer);
  await done;
}

export function writeMssFile(file: string, rows: number, options: Parameters<typeof mssRows>[1] = {}): Promise<void> {
  return writeLines(file, MSS_HEADER, mssRows(rows, options), false);
}

export function writePsFile(file: string, rows: number, options: Parameters<typeof psRows>[1] = {}): Promise<void> {
  return writeLines(file, PS_HEADER, psRows(rows, options), true);
}

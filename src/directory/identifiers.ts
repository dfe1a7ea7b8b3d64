/**
 * National identifiers of the French health directory (docs/decisions/0007-directory.md, DOMAIN.md §2):
 *
 * - practitioners: `idNat_PS` = `8` + RPPS (11 digits, the last a Luhn key) or `0` + ADELI (9 characters);
 * - structures: `idNat_Struct` = `1` + FINESS (9 characters, Luhn key), `2` + SIREN (9 digits, Luhn),
 *   `3` + SIRET (14 digits, Luhn; La Poste's establishments use a digit sum instead), and, passed through
 *   with a format check only, `4` + RPPS-rang and `0` + ADELI-rang (practice identifiers);
 * - patients: the INS matricule, a 15-character NIR or NIA whose last 2 digits are 97 − (first 13 mod 97),
 *   with Corsica's `2A` → 19 and `2B` → 18 for the computation.
 *
 * Pure functions over strings; every one returns false (never throws) for anything that is not a string of the
 * right shape.
 */

/** Luhn (mod 10) over a string of digits, the check digit included. */
export function luhnValid(digits: string): boolean {
  if (!/^\d+$/.test(digits)) return false;
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/** RPPS: 11 digits, the last one a Luhn key. */
export function isRpps(value: string): boolean {
  return value.length === 11 && luhnValid(value);
}

/**
 * ADELI: 9 characters, department (2 digits, or 2A/2B for Corsica) then 7 digits. Its key is not checked: the
 * rule is not confirmed by a primary source here (DOMAIN.md marks it unverified).
 */
export function isAdeli(value: string): boolean {
  return /^(?:\d{2}|2[AB])\d{7}$/.test(value);
}

/** `idNat_PS` of a practitioner: `8` + RPPS or `0` + ADELI. */
export function isIdNatPs(value: string): boolean {
  if (value.startsWith('8')) return isRpps(value.slice(1));
  if (value.startsWith('0')) return isAdeli(value.slice(1));
  return false;
}

/**
 * FINESS: 9 characters, department (2 digits, or 2A/2B) then 7 digits, the last a Luhn key over the 9 digits.
 * Corsican numbers (2A/2B) are accepted on their format only: how their key treats the letter is not verified.
 */
export function isFiness(value: string): boolean {
  if (/^2[AB]\d{7}$/.test(value)) return true;
  return /^\d{9}$/.test(value) && luhnValid(value);
}

/** SIREN: 9 digits with a Luhn key. */
export function isSiren(value: string): boolean {
  return /^\d{9}$/.test(value) && luhnValid(value);
}

/** La Poste's SIREN: its establishments' SIRET numbers are checked by a digit sum multiple of 5 instead of Luhn. */
const LA_POSTE_SIREN = '356000000';

/** SIRET: 14 digits, SIREN + establishment number, with a Luhn key (La Poste: digit sum multiple of 5). */
export function isSiret(value: string): boolean {
  if (!/^\d{14}$/.test(value)) return false;
  if (value.startsWith(LA_POSTE_SIREN) && value !== `${LA_POSTE_SIREN}00048`) {
    let sum = 0;
    for (let i = 0; i < value.length; i++) sum += value.charCodeAt(i) - 48;
    return sum % 5 === 0;
  }
  return luhnValid(value);
}

/** `idNat_Struct` of a structure: `1` + FINESS, `2` + SIREN, `3` + SIRET, `4` + RPPS-rang, `0` + ADELI-rang. */
export function isIdNatStruct(value: string): boolean {
  const rest = value.slice(1);
  switch (value[0]) {
    case '1':
      return isFiness(rest);
    case '2':
      return isSiren(rest);
    case '3':
      return isSiret(rest);
    case '4':
      // RPPS of the practitioner then a rank (format only).
      return /^\d{12,16}$/.test(rest);
    case '0':
      return /^(?:\d{2}|2[AB])\d{8,12}$/.test(rest);
    default:
      return false;
  }
}

/**
 * The structure identifier of the "Extraction correspondance MSSanté" (`Type identifiant structure` +
 * `Identification Structure`) as an `idNat_Struct`: the value may come with its type prefix already (10
 * characters for a FINESS) or without it (9). Returns null when it is not a valid identifier of that type.
 */
export function toIdNatStruct(type: string, value: string): string | null {
  const t = type.trim();
  const v = value.trim().toUpperCase();
  if (!/^[01234]$/.test(t) || v === '') return null;
  const bare: Record<string, number> = { '1': 9, '2': 9, '3': 14 };
  const length = bare[t];
  const candidate = length !== undefined && v.length === length ? `${t}${v}` : v;
  return candidate.startsWith(t) && isIdNatStruct(candidate) ? candidate : null;
}

/** Corsican departments replaced by digits for the NIR key computation. */
function nirDigits(first13: string): string {
  return first13.slice(0, 5) + first13.slice(5, 7).replace('2A', '19').replace('2B', '18') + first13.slice(7);
}

/** The 2-digit key of a NIR/NIA whose first 13 characters are given, or null if they cannot carry one. */
export function nirKey(first13: string): string | null {
  if (!/^[1-478]\d{4}(?:\d{2}|2[AB])\d{6}$/.test(first13)) return null;
  const digits = nirDigits(first13);
  // 13 digits exceed 2^53 only by a little: compute the remainder in two halves.
  const rem = (Number(digits.slice(0, 7)) % 97) * (10 ** 6 % 97) + Number(digits.slice(7));
  return String(97 - (rem % 97)).padStart(2, '0');
}

/** INS matricule (NIR or NIA): 15 characters whose last 2 digits are the key of the first 13. */
export function isNir(value: string): boolean {
  if (value.length !== 15) return false;
  const key = nirKey(value.slice(0, 13));
  return key !== null && key === value.slice(13);
}

/** The kind of a national identifier, for people-facing messages and `mss directory show`. */
export type IdentifierKind = 'idNat_PS' | 'idNat_Struct' | 'INS';

export function identifierKind(value: string): IdentifierKind | null {
  if (isIdNatPs(value)) return 'idNat_PS';
  if (isIdNatStruct(value)) return 'idNat_Struct';
  if (isNir(value)) return 'INS';
  return null;
}

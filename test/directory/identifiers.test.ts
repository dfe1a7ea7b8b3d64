import { describe, expect, it } from 'vitest';
import {
  identifierKind,
  isAdeli,
  isFiness,
  isIdNatPs,
  isIdNatStruct,
  isNir,
  isRpps,
  isSiren,
  isSiret,
  luhnValid,
  nirKey,
  toIdNatStruct,
} from '../../src/directory/identifiers.js';
import { contentHash, FIELD_SEPARATOR, hashFields, headerKey, searchKey } from '../../src/directory/normalize.js';

describe('identifier validation', () => {
  it.each([
    ['79927398713', true],
    ['79927398710', false],
    ['0', true],
    ['', false],
    ['12a4', false],
  ])('Luhn %s → %s', (value, valid) => expect(luhnValid(value)).toBe(valid));

  it.each([
    // A real RPPS from a public PS_LibreAcces row, and computed ones.
    ['10100271385', true],
    ['10000000421', true],
    ['10100271384', false],
    ['1010027138', false],
    ['101002713850', false],
    ['1010027138A', false],
  ])('RPPS %s → %s', (value, valid) => expect(isRpps(value)).toBe(valid));

  it.each([
    ['010001949', true],
    ['2A1234567', true],
    ['01000194', false],
    ['0100019490', false],
    ['2C1234567', false],
  ])('ADELI %s → %s', (value, valid) => expect(isAdeli(value)).toBe(valid));

  it.each([
    ['810100271385', true],
    ['0010001949', true],
    ['810100271384', false],
    ['10100271385', false],
    ['310100271385', false],
    ['00100019', false],
    ['', false],
  ])('idNat_PS %s → %s', (value, valid) => expect(isIdNatPs(value)).toBe(valid));

  it.each([
    // FINESS of the public PS_LibreAcces sample (sites and legal entities).
    ['010010288', true],
    ['690035159', true],
    ['010000032', true],
    ['010780062', true],
    ['010000033', false],
    ['2A0000014', true],
    ['01000003', false],
  ])('FINESS %s → %s', (value, valid) => expect(isFiness(value)).toBe(valid));

  it.each([
    ['732829320', true],
    ['732829321', false],
    ['73282932', false],
  ])('SIREN %s → %s', (value, valid) => expect(isSiren(value)).toBe(valid));

  it.each([
    // SIRET of the public PS_LibreAcces sample.
    ['49940088500020', true],
    ['41129997700065', true],
    ['26010003700068', true],
    ['77554408300386', true],
    ['49940088500021', false],
    // La Poste: a digit sum multiple of 5 instead of Luhn.
    ['35600000000048', true],
    ['35600000012346', true],
    ['35600000012345', false],
  ])('SIRET %s → %s', (value, valid) => expect(isSiret(value)).toBe(valid));

  it.each([
    ['1010000032', true],
    ['2732829320', true],
    ['349940088500020', true],
    ['1010000033', false],
    ['5010000032', false],
    ['4101002713850001', true],
  ])('idNat_Struct %s → %s', (value, valid) => expect(isIdNatStruct(value)).toBe(valid));

  it('turns the MSSanté extraction structure columns into an idNat_Struct, prefixed or not', () => {
    expect(toIdNatStruct('1', '010000032')).toBe('1010000032');
    expect(toIdNatStruct('1', '1010000032')).toBe('1010000032');
    expect(toIdNatStruct('3', '49940088500020')).toBe('349940088500020');
    expect(toIdNatStruct('1', '010000033')).toBeNull();
    expect(toIdNatStruct('3', '1010000032')).toBeNull();
    expect(toIdNatStruct('9', '010000032')).toBeNull();
    expect(toIdNatStruct('1', '')).toBeNull();
  });

  it.each([
    ['295109912611193', true],
    ['253072B07300470', true],
    ['253072A07300443', true],
    ['255081416802538', true],
    ['279035121518989', true],
    ['295109912611199', false],
    ['253072A07300470', false],
    ['29510991261119', false],
    ['595109912611193', false],
    ['2951099126111933', false],
  ])('NIR / INS %s → %s', (value, valid) => expect(isNir(value)).toBe(valid));

  it('computes the NIR key, Corsica included', () => {
    expect(nirKey('2951099126111')).toBe('93');
    expect(nirKey('253072B073004')).toBe('70');
    expect(nirKey('253072A073004')).toBe('43');
    expect(nirKey('2530X2A073004')).toBeNull();
  });

  it('tells the kind of an identifier', () => {
    expect(identifierKind('810100271385')).toBe('idNat_PS');
    expect(identifierKind('1010000032')).toBe('idNat_Struct');
    expect(identifierKind('279035121518989')).toBe('INS');
    expect(identifierKind('hello')).toBeNull();
  });
});

describe('normalisation', () => {
  it('builds accent- and case-insensitive search keys', () => {
    expect(searchKey('LEBRUN-CARPENTIER', 'Anaïs')).toBe('lebrun carpentier anais');
    expect(searchKey("D'ARTAGNAN", 'Gaëlle')).toBe('d artagnan gaelle');
    expect(searchKey('CŒUR', 'Ève')).toBe('coeur eve');
    expect(searchKey('NGUYỄN', null)).toBe('nguyen');
    expect(searchKey('  ', undefined)).toBe('');
  });

  it('matches header names loosely', () => {
    expect(headerKey('Code Département (structure)')).toBe(headerKey('code departement (structure)'));
    expect(headerKey('\uFEFFType de BAL')).toBe('type de bal');
    expect(headerKey('Prénom d’exercice')).toBe(headerKey("Prénom d'exercice"));
  });

  it('hashes content to a safe integer that depends on every character', () => {
    const a = contentHash('MARTIN\u0001Jean');
    expect(Number.isSafeInteger(a)).toBe(true);
    expect(contentHash('MARTIN\u0001Jean')).toBe(a);
    expect(contentHash('MARTIN\u0001Jeans')).not.toBe(a);
    const fields = ['MARTIN', null, 'Zoé', true, 42, ''];
    expect(hashFields(fields)).toBe(contentHash(fields.map((f) => (f === null ? '\u0000' : String(f))).join(FIELD_SEPARATOR)));
    expect(hashFields(['a', 'b'])).not.toBe(hashFields(['ab', '']));
  });
});

import { describe, expect, it } from 'vitest';
import { displayXdmSubject, formatXdmSubject, parseXdmSubject } from '../../src/mime/xdm/subject.js';

describe('XDM subject convention', () => {
  it('parses the ANS example: label, NAME, first name, birth date', () => {
    expect(parseXdmSubject('XDM/1.0/DDM+ECHOGRAPHIE ABDOMINOPELVIENNE CORSE FIGATELLIX 12/10/1988')).toEqual({
      before: '',
      description: 'ECHOGRAPHIE ABDOMINOPELVIENNE CORSE FIGATELLIX 12/10/1988',
      label: 'ECHOGRAPHIE ABDOMINOPELVIENNE',
      family: 'CORSE',
      given: 'FIGATELLIX',
      birthDate: '12/10/1988',
      birthDateIso: '1988-10-12',
    });
  });

  it('keeps what comes before the marker (error MDN, reply) and accepts compact dates', () => {
    const parsed = parseXdmSubject('[KO Intégration système !][902] XDM/1.0/DDM+CR DUPONT Pierre 19500101');
    expect(parsed).toMatchObject({ before: '[KO Intégration système !][902] ', label: 'CR', family: 'DUPONT', given: 'Pierre', birthDateIso: '1950-01-01' });
  });

  it('keeps only the description when the rest does not end with a valid date', () => {
    for (const subject of ['XDM/1.0/DDM+Compte rendu', 'XDM/1.0/DDM+CR DUPONT Pierre 31/02/1950', 'XDM/1.0/DDM DUPONT Pierre 01/01/1950']) {
      const parsed = parseXdmSubject(subject)!;
      expect(parsed.description).toBeTruthy();
      expect(parsed.label, subject).toBeNull();
      expect(parsed.birthDateIso).toBeNull();
    }
  });

  it('finds no convention in other subjects', () => {
    expect(parseXdmSubject('Compte rendu de Mme Martin')).toBeNull();
    expect(parseXdmSubject('')).toBeNull();
  });

  it('hides the prefix for display, and leaves other subjects as they are', () => {
    expect(displayXdmSubject('Re: XDM/1.0/DDM+CR DUPONT Pierre 19500101')).toBe('Re: CR DUPONT Pierre 19500101');
    expect(displayXdmSubject('Bonjour')).toBe('Bonjour');
  });

  it('writes the convention, names upper-cased, date as DD/MM/YYYY, no line breaks', () => {
    const subject = formatXdmSubject({ label: 'Lettre de liaison', family: 'pat-trois', given: 'DOMINIQUE', birthDate: '1979-03-28' });
    expect(subject).toBe('XDM/1.0/DDM+Lettre de liaison PAT-TROIS DOMINIQUE 28/03/1979');
    expect(parseXdmSubject(subject)).toMatchObject({ label: 'Lettre de liaison', family: 'PAT-TROIS', given: 'DOMINIQUE', birthDateIso: '1979-03-28' });
    expect(formatXdmSubject({ label: 'CR\r\nBcc: x@y', family: 'A', given: 'B', birthDate: '19790328' })).toBe('XDM/1.0/DDM+CR Bcc: x@y A B 28/03/1979');
  });
});

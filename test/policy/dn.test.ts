import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Certificate } from '../../src/crypto/cms/certificate.js';
import { x509 } from '../../src/crypto/x509-util.js';
import { certificateSubjectText, DnSyntaxError, dnMatchesCertificate, parseDn, sameDn } from '../../src/policy/dn.js';
import { tempDir } from '../helpers/engines.js';
import { makeCa, makeServerLeaf, type MadeCert } from './certs.js';

// DNs as the national list writes them (test/fixtures/whitelist).
const ENOVACOM = 'CN=mss.enovacom.fr,OU=344368557300034,O=ENOVACOM,ST=Bouches-du-Rhône (13),C=FR';
const SESAN = 'CN=smtp-1.sesan.santnet.com,OU=1750048886,O=GIP SESAN,ST=Paris (75),C=FR';

describe('parseDn', () => {
  it('reads the list form, RFC 4514 order, types by OID', () => {
    expect(parseDn(SESAN)).toEqual([
      { oid: '2.5.4.3', value: 'smtp-1.sesan.santnet.com' },
      { oid: '2.5.4.11', value: '1750048886' },
      { oid: '2.5.4.10', value: 'GIP SESAN' },
      { oid: '2.5.4.8', value: 'Paris (75)' },
      { oid: '2.5.4.6', value: 'FR' },
    ]);
  });

  it('handles escapes, hex escapes (UTF-8), quoted values, long names, OIDs, ";", "+" and spaces', () => {
    expect(parseDn('O=Dupont\\, Durand et Cie,CN=a\\+b')).toEqual([
      { oid: '2.5.4.10', value: 'Dupont, Durand et Cie' },
      { oid: '2.5.4.3', value: 'a+b' },
    ]);
    expect(parseDn('ST=Bouches-du-Rh\\C3\\B4ne (13)')[0]!.value).toBe('Bouches-du-Rhône (13)');
    expect(parseDn('commonName = x ; 2.5.4.11=u + OID.2.5.4.10="Q, \\"R\\""')).toEqual([
      { oid: '2.5.4.3', value: 'x' },
      { oid: '2.5.4.11', value: 'u' },
      { oid: '2.5.4.10', value: 'Q, "R"' },
    ]);
    expect(parseDn('CN=\\ lead and trail\\ ')[0]!.value).toBe(' lead and trail ');
    expect(parseDn('CN=trailing spaces   ,O=x')[0]!.value).toBe('trailing spaces');
    expect(parseDn('UID=#0403414243')[0]).toEqual({ oid: '0.9.2342.19200300.100.1.1', value: '#0403414243' });
    expect(parseDn('E=ops@example.test,emailAddress=b@c.test').map((a) => a.oid)).toEqual(['1.2.840.113549.1.9.1', '1.2.840.113549.1.9.1']);
  });

  it('refuses malformed DNs', () => {
    for (const bad of ['', '   ', 'CN', 'XX=1', 'CN=a,', 'CN="open', 'CN=a\\', 'CN=#12Z', 'CN=#123']) {
      expect(() => parseDn(bad), bad).toThrow(DnSyntaxError);
    }
  });
});

describe('sameDn', () => {
  it('ignores RDN order, case, spacing and the type spelling', () => {
    expect(sameDn(SESAN, 'C=FR, ST=Paris (75), O=GIP SESAN, OU=1750048886, CN=smtp-1.sesan.santnet.com')).toBe(true);
    expect(sameDn(SESAN, 'cn=SMTP-1.SESAN.SANTNET.COM,ou=1750048886,o=gip  sesan,stateOrProvinceName=Paris (75),countryName=fr')).toBe(true);
  });

  it('keeps each type bound to its value, counts attributes and keeps accents', () => {
    expect(sameDn(SESAN, 'CN=smtp-2.sesan.santnet.com,OU=1750048886,O=GIP SESAN,ST=Paris (75),C=FR')).toBe(false);
    expect(sameDn('CN=a,O=b', 'CN=b,O=a')).toBe(false);
    expect(sameDn('CN=a,O=b', 'CN=a,O=b,OU=c')).toBe(false);
    expect(sameDn('CN=a,O=b,O=b', 'CN=a,O=b')).toBe(false);
    expect(sameDn(ENOVACOM, ENOVACOM.replace('ô', 'o'))).toBe(false);
    expect(sameDn(ENOVACOM, ENOVACOM.normalize('NFD'))).toBe(true); // the same text, decomposed
  });
});

describe('DN against a certificate', () => {
  let dir: { dir: string; dispose(): void };
  let ca: MadeCert;
  let leaf: MadeCert;

  beforeAll(async () => {
    dir = tempDir('mss-dn-');
    ca = await makeCa(dir.dir, 'ca', '/O=Test IGC/CN=Test AC SERV SSL');
    leaf = await makeServerLeaf(dir.dir, ca, 'enovacom', '/C=FR/ST=Bouches-du-Rhône (13)/O=ENOVACOM/OU=344368557300034/CN=mss.enovacom.fr');
  });
  afterAll(() => dir.dispose());

  it('matches the published DN whatever form the certificate comes in', () => {
    const der = new X509Certificate(leaf.pem).raw;
    const forms = [leaf.pem, der, Certificate.from(leaf.pem), new X509Certificate(leaf.pem), new x509.X509Certificate(leaf.pem), { raw: der }];
    for (const form of forms) expect(dnMatchesCertificate(ENOVACOM, form)).toBe(true);
    expect(certificateSubjectText(leaf.pem)).toBe(ENOVACOM);
  });

  it('does not match another operator, and a malformed published DN matches nothing', () => {
    expect(dnMatchesCertificate(SESAN, leaf.pem)).toBe(false);
    expect(dnMatchesCertificate(ENOVACOM.replace('344368557300034', '344368557300035'), leaf.pem)).toBe(false);
    expect(dnMatchesCertificate('CN=mss.enovacom.fr', leaf.pem)).toBe(false);
    expect(dnMatchesCertificate('not a DN', leaf.pem)).toBe(false);
    expect(dnMatchesCertificate('CN=Test AC SERV SSL,O=Test IGC', ca.pem)).toBe(true);
  });
});

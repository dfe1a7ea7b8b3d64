import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { XmlUnsafeError } from '../../src/mime/cda/xml.js';
import { XdmFormatError, XdmIntegrityError, ZipPathError } from '../../src/mime/xdm/errors.js';
import { parseCx } from '../../src/mime/xdm/metadata.js';
import { isXdmListing, readXdm, xdmIntegrityErrors } from '../../src/mime/xdm/read.js';
import { DEFAULT_XDM_LIMITS } from '../../src/mime/xdm/limits.js';
import { listZip } from '../../src/mime/xdm/zip.js';
import { rezip, thrown, zipOf } from '../helpers/zip.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/xdm/${name}`, import.meta.url));

describe('readXdm: every fixture package, and how each is handled', () => {
  it('ETT CCDA_Ambulatory_in_XDM: a clean package, size and SHA-1 verified', () => {
    const pkg = readXdm(fixture('ett/CCDA_Ambulatory_in_XDM.zip'));
    expect(pkg).toMatchObject({ root: '', readme: { path: 'README.TXT' }, index: { path: 'INDEX.HTM' }, warnings: [] });
    expect(pkg.readme!.text).toContain('assembled by NIST');
    expect(pkg.subsets).toHaveLength(1);
    const [doc] = pkg.subsets[0]!.documents;
    expect(doc).toMatchObject({ path: 'IHE_XDM/SUBSET01/CCDAAMB.XML', matchedBy: 'uri', sha1: '986f71360224a1bec649d9e49e91e51bce29de07' });
    expect(doc!.entry).toMatchObject({
      mimeType: 'application/xml',
      size: 79482,
      typeCode: { code: '34096-8', scheme: 'LOINC' },
      patientId: { id: '1', assigningAuthority: '2.16.840.1.113883.4.6' },
      uniqueId: '1.2.840.114350.1.13.252.1.7.2.688879.02004.634308739192149557.1',
      sourcePatientInfo: expect.arrayContaining(['PID-5|Jones^Isabella^^^^']),
    });
    expect(pkg.subsets[0]!.metadata.submissionSet).toMatchObject({ id: 'SubmissionSet', submissionTime: '20110117211159' });
  });

  it('ETT ToC_XDM_Limited_Metadata: limited metadata (no type code) is accepted', () => {
    const pkg = readXdm(fixture('ett/ToC_XDM_Limited_Metadata.zip'));
    const [doc] = pkg.subsets[0]!.documents;
    expect(doc!.entry).toMatchObject({ id: 'eo1ID', uri: 'TOC.XML', size: 140619, typeCode: null, classCode: null });
    expect(doc!.content).toHaveLength(140619);
  });

  it('ETT BadXHTML: INDEX.HTM is not well-formed and README names another file; neither is parsed, the document verifies', () => {
    const pkg = readXdm(fixture('ett/BadXHTML.zip'));
    expect(pkg.index).toEqual({ path: 'INDEX.HTM' });
    expect(pkg.subsets[0]!.documents[0]).toMatchObject({ path: 'IHE_XDM/SUBSET01/TOC_A.XML', sha1: 'ac858e31fab99a2260ff5f666aca0d3f22c46bfc' });
    expect(pkg.warnings).toEqual([]);
  });

  it('Direct RI samplexdm: extra top folder, mixed case, no URI and no size slot: read with warnings, SHA-1 verified', () => {
    const pkg = readXdm(fixture('nhin-d/samplexdm.zip'));
    expect(pkg).toMatchObject({ root: 'samplexdm/', readme: { path: 'samplexdm/README.txt' }, index: { path: 'samplexdm/INDEX.htm' } });
    expect(pkg.subsets[0]).toMatchObject({ folder: 'IHE_XDM/SUBSET01', metadataPath: 'samplexdm/IHE_XDM/SUBSET01/METADATA.xml' });
    const [doc] = pkg.subsets[0]!.documents;
    expect(doc).toMatchObject({ path: 'samplexdm/IHE_XDM/SUBSET01/Document01.xml', matchedBy: 'id' });
    expect(doc!.entry).toMatchObject({ id: 'Document01', uri: null, size: null, hash: '2f016bdeba83855ec76bd1102d9da6a79590f1a9' });
    expect(doc!.sha1).toBe(doc!.entry.hash);
    expect(pkg.warnings).toEqual([
      'the package sits in the folder samplexdm/ instead of the archive root',
      'IHE_XDM/SUBSET01: document "Document01" has no URI slot; matched to IHE_XDM/SUBSET01/Document01.xml by its id',
      'IHE_XDM/SUBSET01: document "Document01" has no size slot; its size is not checked',
    ]);
  });

  describe('ANS DRIMbox metadata (French, published without its documents)', () => {
    const metadata = fixture('ans-drim-m/METADATA.XML');
    const zip = zipOf({ 'README.TXT': 'DRIMbox', 'INDEX.HTM': '<html/>', 'IHE_XDM/SS000001/METADATA.XML': metadata });

    it('reads the undeclared ns3: prefix, the SS000001 folder and the French codes', () => {
      const pkg = readXdm(zip, { verify: false });
      const subset = pkg.subsets[0]!;
      expect(subset.folder).toBe('IHE_XDM/SS000001');
      expect(subset.metadata.submissionSet).toMatchObject({
        patientId: { id: '162018885045327', assigningAuthority: '1.2.250.1.213.1.4.10' },
        contentTypeCode: { code: '04', scheme: '1.2.250.1.213.2.2', display: 'Hospitalisation de jour' },
        authors: [{ person: '899700367909^DOC0036790^KIT^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS' }],
      });
      expect(subset.documents.map((d) => [d.entry.id, d.entry.mimeType, d.entry.uri, d.entry.size])).toEqual([
        ['DocumentKOS', 'application/dicom', 'SS000001/KOS_1_1.DCM', 5164],
        ['Signature01', 'text/xml', 'SS000001/SIGN_1.XML', 6102],
      ]);
      expect(subset.documents[0]!.entry).toMatchObject({
        classCode: { code: '31' },
        typeCode: { code: 'IMG-KOS' },
        healthcareFacilityTypeCode: { code: 'SA25' },
        eventCodes: [{ code: '63337009' }, { code: 'MR' }],
      });
      expect(subset.documents[1]!.entry.confidentialityCodes.map((c) => c.code)).toEqual(['N', 'MASQUE_PS', 'INVISIBLE_PATIENT']);
      expect(xdmIntegrityErrors(pkg).map((e) => [e.problem, e.documentId])).toEqual([
        ['missing', 'DocumentKOS'],
        ['missing', 'Signature01'],
      ]);
    });

    it('refuses it as a package: its documents are missing', () => {
      const err = thrown(() => readXdm(zip));
      expect(err).toBeInstanceOf(XdmIntegrityError);
      expect(err).toMatchObject({ problem: 'missing', subset: 'IHE_XDM/SS000001', documentId: 'DocumentKOS', uri: 'SS000001/KOS_1_1.DCM' });
    });

    it('finds a document whose URI is relative to IHE_XDM/ and checks its size', () => {
      const withDoc = zipOf({ 'IHE_XDM/SS000001/METADATA.XML': metadata, 'IHE_XDM/SS000001/KOS_1_1.DCM': Buffer.alloc(10) });
      const pkg = readXdm(withDoc, { verify: false });
      expect(pkg.subsets[0]!.documents[0]).toMatchObject({ path: 'IHE_XDM/SS000001/KOS_1_1.DCM', matchedBy: 'uri' });
      expect(xdmIntegrityErrors(pkg)[0]).toMatchObject({ problem: 'size', documentId: 'DocumentKOS', expected: '5164', actual: '10' });
    });
  });
});

describe('readXdm: tampered and hostile packages', () => {
  const original = fixture('ett/CCDA_Ambulatory_in_XDM.zip');

  it('refuses a document changed after packaging (same size), naming it', () => {
    const tampered = rezip(original, (files) => {
      const doc = files['IHE_XDM/SUBSET01/CCDAAMB.XML']!;
      const at = doc.indexOf('Isabella');
      doc.write('Isabelle', at);
    });
    const err = thrown(() => readXdm(tampered));
    expect(err).toBeInstanceOf(XdmIntegrityError);
    expect(err).toMatchObject({
      code: 'xdm-integrity',
      problem: 'hash',
      subset: 'IHE_XDM/SUBSET01',
      documentId: '655883d1-54a6-4dbb-a616-48e71e46b3e2',
      uri: 'CCDAAMB.XML',
      expected: '986f71360224a1bec649d9e49e91e51bce29de07',
    });
    expect((err as Error).message).toContain('655883d1-54a6-4dbb-a616-48e71e46b3e2');
  });

  it('refuses a document whose size changed', () => {
    const tampered = rezip(original, (files) => {
      files['IHE_XDM/SUBSET01/CCDAAMB.XML'] = Buffer.concat([files['IHE_XDM/SUBSET01/CCDAAMB.XML']!, Buffer.from('\n')]);
    });
    expect(thrown(() => readXdm(tampered))).toMatchObject({ problem: 'size', expected: '79482', actual: '79483' });
  });

  it('refuses a package whose document was removed', () => {
    const tampered = rezip(original, (files) => delete files['IHE_XDM/SUBSET01/CCDAAMB.XML']);
    expect(thrown(() => readXdm(tampered))).toMatchObject({ problem: 'missing' });
  });

  it('refuses METADATA.XML carrying an external entity', () => {
    const tampered = rezip(original, (files) => {
      const xml = files['IHE_XDM/SUBSET01/METADATA.XML']!.toString('utf8');
      files['IHE_XDM/SUBSET01/METADATA.XML'] = Buffer.from(`<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n${xml.replace('>CCDAAMB.XML<', '>&e;<')}`);
    });
    expect(thrown(() => readXdm(tampered))).toBeInstanceOf(XmlUnsafeError);
  });

  it('refuses a document URI that leaves the package', () => {
    const tampered = rezip(original, (files) => {
      const xml = files['IHE_XDM/SUBSET01/METADATA.XML']!.toString('utf8');
      files['IHE_XDM/SUBSET01/METADATA.XML'] = Buffer.from(xml.replace('>CCDAAMB.XML<', '>../../README.TXT<'));
    });
    expect(thrown(() => readXdm(tampered))).toMatchObject({ name: 'XdmFormatError', message: expect.stringContaining('leaves the package') });
  });

  it('refuses names that differ only by case (which would make lookups ambiguous)', () => {
    const zip = zipOf({ 'IHE_XDM/SUBSET01/METADATA.XML': '<a/>', 'IHE_XDM/SUBSET01/metadata.xml': '<b/>' });
    expect(thrown(() => readXdm(zip))).toBeInstanceOf(ZipPathError);
  });

  it('refuses a zip that is not an XDM package, or has no metadata, or several roots', () => {
    expect(thrown(() => readXdm(zipOf({ 'photo.jpg': 'x' })))).toBeInstanceOf(XdmFormatError);
    expect(thrown(() => readXdm(zipOf({ 'IHE_XDM/SUBSET01/DOC.XML': '<x/>' })))).toMatchObject({ message: expect.stringContaining('METADATA.XML') });
    expect(thrown(() => readXdm(zipOf({ 'a/IHE_XDM/S/METADATA.XML': '<x/>', 'b/IHE_XDM/S/METADATA.XML': '<x/>' })))).toMatchObject({
      message: expect.stringContaining('several IHE_XDM folders'),
    });
    expect(thrown(() => readXdm(zipOf({ 'IHE_XDM/S/METADATA.XML': '<html/>' })))).toMatchObject({ message: expect.stringContaining('not SubmitObjectsRequest') });
  });

  it('refuses malformed size and hash slots', () => {
    for (const [from, to] of [
      ['>79482<', '>79 482<'],
      ['>986f71360224a1bec649d9e49e91e51bce29de07<', '>md5:abc<'],
    ] as const) {
      const tampered = rezip(original, (files) => {
        files['IHE_XDM/SUBSET01/METADATA.XML'] = Buffer.from(files['IHE_XDM/SUBSET01/METADATA.XML']!.toString('utf8').replace(from, to));
      });
      expect(thrown(() => readXdm(tampered))).toBeInstanceOf(XdmFormatError);
    }
  });
});

describe('XDM helpers', () => {
  it('tells an XDM listing from another zip', () => {
    expect(isXdmListing(listZip(fixture('nhin-d/samplexdm.zip'), DEFAULT_XDM_LIMITS))).toBe(true);
    expect(isXdmListing(listZip(zipOf({ 'IHE_XDM.txt': 'x' }), DEFAULT_XDM_LIMITS))).toBe(false);
  });

  it('parses CX identifiers', () => {
    expect(parseCx('279035121518989^^^&1.2.250.1.213.1.4.8&ISO^NH')).toEqual({
      id: '279035121518989',
      assigningAuthority: '1.2.250.1.213.1.4.8',
      raw: '279035121518989^^^&1.2.250.1.213.1.4.8&ISO^NH',
    });
    expect(parseCx('111111111^^&2.16.840.1.113883.4.1&ISO')).toMatchObject({ id: '111111111', assigningAuthority: null });
    expect(parseCx('  ')).toBeNull();
  });
});

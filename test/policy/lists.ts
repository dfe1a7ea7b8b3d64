import { readFileSync } from 'node:fs';
import { TRUST_LIST_NAMESPACE } from '../../src/policy/trust-list.js';

/** The published excerpt (test/fixtures/whitelist/SOURCES.md). */
export const WHITELIST = readFileSync(new URL('../fixtures/whitelist/listeblanchemssante_excerpt_domaines-001-020.xml', import.meta.url));

/** A list in the national format around the given `<Domaine>` bodies. */
export function listXml(domains: string[], options: { date?: string; root?: string } = {}): string {
  const root = options.root ?? `<ListeBlancheMSSante xmlns="${TRUST_LIST_NAMESPACE}">`;
  return (
    `<?xml version="1.0" encoding="UTF-8"?>${root}<DateDeGeneration>${options.date ?? '2026-11-01T08:00:00Z'}</DateDeGeneration><ListeDomaines>` +
    domains.map((d) => `<Domaine>${d}</Domaine>`).join('') +
    '</ListeDomaines></ListeBlancheMSSante>'
  );
}

export const entry = (name: string, dn = `CN=mx.${name},O=Op,C=FR`) =>
  `<Nom>${name}</Nom><Description>d ${name}</Description><DNCertificatOperateur>${dn}</DNCertificatOperateur>` +
  '<ResponsableContact>r</ResponsableContact><SupportContact>s</SupportContact><DateMAJ>2026-10-01T00:00:00Z</DateMAJ>';


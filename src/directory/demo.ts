import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { openDirectoryStore } from '../store/directory.js';
import type { Store } from '../store/types.js';
import { MSS_HEADER, PS_HEADER } from './headers.js';
import { importDirectoryFile } from './import.js';

/**
 * The demo operator's directory: two small extraction files in the public formats, written into the data
 * directory and imported like any others, so the demo practitioners pass the sender checks (`directory.senderCheck`
 * is `enforce` by default) and appear in address-book completion.
 */

export interface DemoPractitioner {
  rpps: string;
  surname: string;
  givenName: string;
  address: string;
  profession: [code: string, label: string];
  specialty: [code: string, label: string];
}

export interface DemoOrganisation {
  finess: string;
  name: string;
  address: string;
  type: 'ORG' | 'APP';
  service: string;
}

function row(header: readonly string[], values: Record<string, string>, trailing: boolean): string {
  const fields = header.map((name) => values[name] ?? '');
  return fields.join('|') + (trailing ? '|' : '');
}

export async function seedDemoDirectory(
  store: Store,
  dataDir: string,
  demo: { practitioners: readonly DemoPractitioner[]; organisations: readonly DemoOrganisation[]; structureFiness: string; structureName: string },
): Promise<string[]> {
  const dir = path.join(dataDir, 'demo-directory');
  mkdirSync(dir, { recursive: true });
  const ps = [
    PS_HEADER.join('|') + '|',
    ...demo.practitioners.map((p) =>
      row(
        PS_HEADER,
        {
          "Type d'identifiant PP": '8',
          'Identifiant PP': p.rpps,
          'Identification nationale PP': `8${p.rpps}`,
          "Nom d'exercice": p.surname,
          "Prénom d'exercice": p.givenName,
          'Code profession': p.profession[0],
          'Libellé profession': p.profession[1],
          'Code savoir-faire': p.specialty[0],
          'Libellé savoir-faire': p.specialty[1],
          'Code mode exercice': 'S',
          'Libellé mode exercice': 'Salarié',
          'Numéro FINESS site': demo.structureFiness,
          'Numéro FINESS établissement juridique': demo.structureFiness,
          'Raison sociale site': demo.structureName,
          'Code postal (coord. structure)': '75013',
          'Libellé commune (coord. structure)': 'Paris',
        },
        true,
      ),
    ),
  ];
  const mss = [
    MSS_HEADER.join('|'),
    ...demo.practitioners.map((p) =>
      row(
        MSS_HEADER,
        {
          'Type de BAL': 'PER',
          'Adresse BAL': p.address,
          'Type Identifiant PP': '8',
          'Identifiant PP': p.rpps,
          'Identification nationale PP': `8${p.rpps}`,
          'Type identifiant structure': '1',
          'Identification Structure': demo.structureFiness,
          "Nom d'exercice": p.surname,
          "Prénom d'exercice": p.givenName,
          'Code Profession': p.profession[0],
          'Libellé Profession': p.profession[1],
          'Dématérialisation': 'True',
          'Raison Sociale structure BAL': demo.structureName,
          'Code postal structure BAL': '75013',
        },
        false,
      ),
    ),
    ...demo.organisations.map((o) =>
      row(
        MSS_HEADER,
        {
          'Type de BAL': o.type,
          'Adresse BAL': o.address,
          'Type identifiant structure': '1',
          'Identification Structure': o.finess,
          'Service de rattachement': o.service,
          'Dématérialisation': 'True',
          'Raison Sociale structure BAL': o.name,
          'Code postal structure BAL': '75013',
        },
        false,
      ),
    ),
  ];
  const psFile = path.join(dir, 'PS_LibreAcces_Personne_activite_demo.txt');
  const mssFile = path.join(dir, 'Extraction_Correspondance_MSSante_demo.txt');
  writeFileSync(psFile, ps.join('\n') + '\n');
  writeFileSync(mssFile, mss.join('\n') + '\n');
  const directory = openDirectoryStore(store);
  const lines: string[] = [];
  for (const file of [psFile, mssFile]) {
    const report = await importDirectoryFile(directory, file);
    lines.push(`imported the demo directory file ${path.basename(file)}: ${report.rows} rows, ${report.badRowCount} bad`);
  }
  return lines;
}

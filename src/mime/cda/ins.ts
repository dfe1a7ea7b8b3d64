import { isNir } from '../../directory/identifiers.js';

/**
 * The INS (identifiant national de santé) as documents carry it: a 15-character matricule (NIR, or NIA when
 * there is no NIR) identified by the OID of its kind (DOMAIN.md §2, FR Core `fr-core-patient-ins`).
 */

export const INS_OIDS = {
  '1.2.250.1.213.1.4.8': 'INS-NIR',
  '1.2.250.1.213.1.4.9': 'INS-NIA',
  '1.2.250.1.213.1.4.10': 'INS-NIR-TEST',
  '1.2.250.1.213.1.4.11': 'INS-NIR-DEMO',
} as const;

export type InsOid = keyof typeof INS_OIDS;
export type InsKind = (typeof INS_OIDS)[InsOid];

/** The OIDs of test and demonstration identities, which a production operator may choose not to accept. */
export const TEST_INS_OIDS: readonly InsOid[] = ['1.2.250.1.213.1.4.10', '1.2.250.1.213.1.4.11'];

export interface Ins {
  matricule: string;
  oid: InsOid;
  kind: InsKind;
}

export interface InsOptions {
  /** Accept the test (`.10`) and demonstration (`.11`) OIDs as INS. */
  acceptTestIns: boolean;
}

export const DEFAULT_INS_OPTIONS: InsOptions = { acceptTestIns: true };

export function isInsOid(oid: string): oid is InsOid {
  return Object.prototype.hasOwnProperty.call(INS_OIDS, oid);
}

/**
 * The INS of an identifier (`root` OID, `extension` matricule), or null when the OID is not an INS OID, the OID
 * is a test one and tests are not accepted, or the matricule's key does not check. `urn:oid:` prefixes are allowed.
 */
export function toIns(root: string | null, extension: string | null, options: InsOptions = DEFAULT_INS_OPTIONS): Ins | null {
  if (root === null || extension === null) return null;
  const oid = root.trim().replace(/^urn:oid:/i, '');
  const matricule = extension.trim().toUpperCase();
  if (!isInsOid(oid)) return null;
  if (!options.acceptTestIns && TEST_INS_OIDS.includes(oid)) return null;
  if (!isNir(matricule)) return null;
  return { matricule, oid, kind: INS_OIDS[oid] };
}

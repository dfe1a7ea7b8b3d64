import type { Raw } from './rows.js';
import type { TrustDomainRow, TrustListRow } from './trust-types.js';

/** The column readers of one engine (its `rows.ts`), which differ in how integers come back. */
export interface TrustColumnReaders {
  readInt(row: Raw, column: string): number;
  readText(row: Raw, column: string): string;
  readTextOrNull(row: Raw, column: string): string | null;
}

/** Row mappers of the trust-space tables: each column checked as it is read, never cast (as `rows.ts`). */
export function trustRowReaders({ readInt, readText, readTextOrNull }: TrustColumnReaders) {
  return {
    toTrustList: (row: Raw): TrustListRow => ({
      id: readInt(row, 'id'),
      generatedAt: readInt(row, 'generated_at'),
      importedAt: readInt(row, 'imported_at'),
      source: readText(row, 'source'),
      sha256: readText(row, 'sha256'),
      domainCount: readInt(row, 'domain_count'),
      caBundle: readTextOrNull(row, 'ca_bundle'),
    }),
    toTrustDomain: (row: Raw): TrustDomainRow => ({
      name: readText(row, 'name'),
      description: readText(row, 'description'),
      operatorDn: readText(row, 'operator_dn'),
      responsableContact: readText(row, 'responsable_contact'),
      supportContact: readText(row, 'support_contact'),
      updatedAt: readInt(row, 'updated_at'),
    }),
  };
}

/** Domain names are compared without case (ASCII: IDNs are published in their A-label form). */
export function domainKey(name: string): string {
  return name.trim().toLowerCase();
}

/**
 * The trust space's storage port, beside `Store` (same database, same engines): the operator domain list
 * published by the national authority (or another instance's export), with the CA bundle the operators'
 * certificates must chain to. Public data, in clear.
 *
 * Every process reads the same active list: the latest imported one. An import replaces it in one unit of
 * work, so readers see the old list or the new one, never a mix; the rows of older lists are kept as history
 * (date, source, digest), their domains are not.
 */

/** One `Domaine` entry: a domain may appear several times, once per operator server certificate. */
export interface TrustDomainRow {
  /** As published (lookups ignore case). */
  name: string;
  description: string;
  /** Subject DN of the operator's server certificate, RFC 4514 text as published. */
  operatorDn: string;
  responsableContact: string;
  supportContact: string;
  /** `DateMAJ`, ms since epoch. */
  updatedAt: number;
}

export interface TrustListRow {
  id: number;
  /** `DateDeGeneration`, ms since epoch. */
  generatedAt: number;
  importedAt: number;
  /** Where it came from: a file name or a URL (without credentials). */
  source: string;
  /** SHA-256 of the XML bytes, lower-case hex. */
  sha256: string;
  domainCount: number;
  /** PEM certificates of the CAs the operators' certificates must chain to, or null when none was given. */
  caBundle: string | null;
}

export interface NewTrustList {
  generatedAt: number;
  source: string;
  sha256: string;
  /** The CA bundle to store with the list; undefined keeps the active list's (read under the import lock). */
  caBundle: string | null | undefined;
  /** In the order of the file (kept for export). */
  domains: readonly TrustDomainRow[];
}

export interface TrustReplaceOutcome {
  list: TrustListRow;
  /** False when the active list already had the same digest and CA bundle: nothing was written. */
  replaced: boolean;
}

export interface TrustStore {
  readonly engine: 'sqlite' | 'postgres';
  /** The list in force, or null before the first import. */
  activeList(): Promise<TrustListRow | null>;
  /** Every entry of the active list, in file order. */
  listDomains(): Promise<TrustDomainRow[]>;
  /** The entries of one domain (case ignored) in the active list, in file order; empty when it is not there. */
  lookupDomain(name: string): Promise<TrustDomainRow[]>;
  /**
   * Makes `list` the active list in one unit of work (concurrent imports from several processes are
   * serialised); unchanged when the active list has the same digest and CA bundle.
   */
  replaceList(list: NewTrustList, importedAt?: number): Promise<TrustReplaceOutcome>;
  /** Imported lists, newest first (the active one first). */
  history(limit: number): Promise<TrustListRow[]>;
}

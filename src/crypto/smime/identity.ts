/**
 * Who a certificate speaks for: its e-mail address (rfc822Name, or the legacy emailAddress attribute when it
 * has no rfc822Name), or a whole domain (Direct domain-bound certificate: dNSName), and the practitioner's
 * national identifier idNat_PS ('8' + RPPS) in the subject serialNumber attribute.
 */
import type { Certificate } from '../cms/certificate.js';
import { OIDS } from '../cms/oids.js';

function splitAddress(address: string): { local: string; domain: string } | null {
  const a = address.trim();
  const at = a.lastIndexOf('@');
  if (at <= 0 || at === a.length - 1) return null;
  return { local: a.slice(0, at), domain: a.slice(at + 1).toLowerCase().replace(/\.$/, '') };
}

/** The addresses a certificate is bound to (lower-case). */
export function certificateAddresses(cert: Certificate): string[] {
  const emails = cert.emails.length ? cert.emails : cert.subjectValues(OIDS.emailAddress);
  return emails.map((e) => e.trim().toLowerCase());
}

/**
 * Whether the certificate may speak for `address`: an address-bound certificate names it exactly (compared
 * case-insensitively, as mail systems in practice treat local parts); a domain-bound one names its domain.
 */
export function certificateMatchesAddress(cert: Certificate, address: string): { match: boolean; binding: 'address' | 'domain' | null } {
  const parts = splitAddress(address);
  if (!parts) return { match: false, binding: null };
  const wanted = `${parts.local.toLowerCase()}@${parts.domain}`;
  if (certificateAddresses(cert).some((e) => e === wanted)) return { match: true, binding: 'address' };
  if (cert.dnsNames.some((d) => d.replace(/\.$/, '') === parts.domain)) return { match: true, binding: 'domain' };
  return { match: false, binding: null };
}

export interface PractitionerIdOptions {
  /** Subject attribute holding idNat_PS (default serialNumber, 2.5.4.5). */
  attribute?: string;
  /** Default /^8\d{11}$/ ('8' + 11-digit RPPS). */
  pattern?: RegExp;
}

/** idNat_PS from the subject, or null (organisation and server certificates carry none). */
export function practitionerIdOf(cert: Certificate, options: PractitionerIdOptions = {}): string | null {
  const pattern = options.pattern ?? /^8\d{11}$/;
  return cert.subjectValues(options.attribute ?? OIDS.serialNumber).find((v) => pattern.test(v)) ?? null;
}

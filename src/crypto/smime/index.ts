/**
 * The S/MIME security agent library: the only module the pipeline, keystore and CLI need to import.
 * It imports nothing from src/smtp, src/imap or src/pipeline.
 */
export { type InboundOptions, type InboundRequest, type InboundResult, type OutboundOptions, type OutboundRequest, type OutboundResult, processInbound, protectOutbound, type Verification } from './agent.js';
export { CrlProvider, type CrlProviderOptions, parseCrls } from './crl.js';
export { buildMultipartSigned, buildPkcs7Mime, splitMultipartSigned, wrapMessage } from './entity.js';
export { DEFAULT_PROTECTED_HEADERS, headerMismatch } from './header-check.js';
export { certificateAddresses, certificateMatchesAddress, practitionerIdOf, type PractitionerIdOptions } from './identity.js';
export { Pkcs12Error, type Pkcs12Contents, readPkcs12 } from './pkcs12.js';
export { checkPurpose, type Purpose, type RevocationChecker, type RevocationStatus, type TrustOptions, validateCertificate, type ValidatedPath } from './trust.js';
export { canonicalize } from './canonical.js';
export { type AlgorithmPolicy, type ContentCipher, DEFAULT_POLICY, type DigestName, type OutboundCipher, type SigningDigest } from '../cms/algorithms.js';
export { Certificate, KEY_USAGE } from '../cms/certificate.js';
export { createEnvelopedData, type DecryptionKey, decryptEnvelopedData, type EncryptOptions, parseEnvelopedData } from '../cms/enveloped-data.js';
export { type CertificateRef, SMIME_FAILURE_CODES, SmimeError, type SmimeFailure, type SmimeFailureCode, type SmimeParty } from '../cms/failure.js';
export { type KeyTransport } from '../cms/key-transport.js';
export { createSignedData, parseSignedData, type SigningCredential, type SignOptions, verifySignedData } from '../cms/signed-data.js';

/**
 * The PEM files behind TLS: the coordinator's certificate and private key (--tls-cert,
 * --tls-key) and a worker's extra trusted certificate (--ca). Each is read and parsed once, at the
 * boundary, so a wrong file is a ConfigError naming the flag and the file, never a TLS failure
 * at the first connection. The HMAC token still proves membership; TLS only hides and protects
 * the frames on the way.
 */
import { readFileSync } from 'node:fs';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { createSecureContext, rootCertificates } from 'node:tls';
import { ConfigError } from '../config-error.js';

export interface ServerTls {
  cert: string;
  key: string;
  /** issued by itself: workers trust it only when given it with --ca */
  selfSigned: boolean;
}

function readPem(flag: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`${flag} ${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

function parseCertificate(flag: string, file: string, pem: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (e) {
    throw new ConfigError(`${flag} ${file} is not a PEM certificate (${(e as Error).message}): pass the file that begins with -----BEGIN CERTIFICATE-----`);
  }
}

/** Reads and checks --tls-cert and --tls-key: both parse, and the key belongs to the certificate. */
export function loadServerTls(certFile: string, keyFile: string): ServerTls {
  const cert = readPem('--tls-cert', certFile);
  const key = readPem('--tls-key', keyFile);
  const x509 = parseCertificate('--tls-cert', certFile, cert);
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch (e) {
    throw new ConfigError(`--tls-key ${keyFile} is not an unencrypted PEM private key (${(e as Error).message}): pass the file that begins with -----BEGIN PRIVATE KEY-----`);
  }
  if (!x509.checkPrivateKey(privateKey)) {
    throw new ConfigError(`--tls-key ${keyFile} is not the private key of --tls-cert ${certFile}: pass the key the certificate was issued for`);
  }
  try {
    createSecureContext({ cert, key });
  } catch (e) {
    throw new ConfigError(`--tls-cert ${certFile} with --tls-key ${keyFile} cannot serve TLS (${(e as Error).message})`);
  }
  return { cert, key, selfSigned: x509.checkIssued(x509) && x509.verify(x509.publicKey) };
}

/**
 * The trust store of a worker given --ca FILE: the system's certificate authorities and the
 * certificate(s) in FILE (node's `ca` option replaces the defaults, so they are added back).
 */
export function loadCa(file: string): string[] {
  const pem = readPem('--ca', file);
  parseCertificate('--ca', file, pem);
  return [...rootCertificates, pem];
}

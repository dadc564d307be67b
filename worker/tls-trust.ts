/**
 * What a worker says when the TLS handshake with its coordinator fails: which of the usual
 * causes it is and the fix, in one line. None of these is worth retrying (the certificate will
 * not change while the worker waits), unlike a connection refused (connect-wait.ts).
 */

/** OpenSSL's verification codes for a certificate whose chain ends nowhere this worker trusts. */
const UNTRUSTED = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_UNTRUSTED', 'CERT_SIGNATURE_FAILURE',
]);
const OUT_OF_DATE = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);
/** What OpenSSL says (under EPROTO) when the other side answers in plain HTTP, not TLS. */
const NOT_TLS = /wrong version number|packet length too long|http request/;

/** OpenSSL's reason alone ("wrong version number"), without its error number and source file. */
function openSslReason(message: string): string {
  return /error:[0-9A-F]+:[^:]*:[^:]*:([^:]+)/.exec(message)?.[1] ?? message;
}

/**
 * The one-line explanation of a failed TLS connection to `url`, or null when `err` is no TLS
 * failure. `caFile` is the --ca FILE the worker was given, if any.
 */
export function tlsFailure(url: string, err: NodeJS.ErrnoException, caFile: string | null): string | null {
  const code = err.code ?? '';
  const cert = `the coordinator's certificate at ${url}`;
  if (UNTRUSTED.has(code)) {
    return caFile === null
      ? `${cert} is not trusted (${err.message}): pass the certificate or its CA with --ca FILE`
      : `${cert} is not trusted (${err.message}), and --ca ${caFile} does not vouch for it: pass the coordinator's certificate (its --tls-cert) or the CA that issued it with --ca FILE`;
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    const host = new URL(url).hostname;
    return `${cert} is not issued for ${host} (${err.message}): connect with a name or address the certificate lists, or issue it with subjectAltName for ${host}`;
  }
  if (OUT_OF_DATE.has(code)) {
    return `${cert} is not valid now (${err.message}): renew the coordinator's --tls-cert, or check this machine's clock`;
  }
  if ((code === 'EPROTO' || code.startsWith('ERR_SSL_')) && NOT_TLS.test(err.message)) {
    return `the coordinator at ${url} does not speak TLS (${openSslReason(err.message)}): connect with ws://, or start the coordinator with --tls-cert and --tls-key`;
  }
  return null;
}

/**
 * Shared-token authentication by HMAC challenge-response: each side sends a fresh random nonce,
 * the other answers HMAC-SHA256(token, role/nonce). The token itself never crosses the wire, a
 * recorded answer is useless against a new nonce, and the role in the MAC stops a reflected answer.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export type Role = 'worker' | 'coordinator';

/** A fresh token for a coordinator started without one (printable, 192 bits). */
export function generateToken(): string {
  return randomBytes(24).toString('base64url');
}

export function newNonce(): string {
  return randomBytes(16).toString('hex');
}

/** The answer `role` gives to `nonce`: hex HMAC-SHA256 keyed with the token. */
export function proofFor(token: string, role: Role, nonce: string): string {
  return createHmac('sha256', token).update(`dpt/${role}/${nonce}`).digest('hex');
}

/** Constant-time check of an answer received from the wire (any type; false unless it is right). */
export function verifyProof(token: string, role: Role, nonce: string, answer: unknown): boolean {
  if (typeof answer !== 'string' || !/^[0-9a-f]{64}$/.test(answer)) return false;
  return timingSafeEqual(Buffer.from(proofFor(token, role, nonce), 'hex'), Buffer.from(answer, 'hex'));
}

/** The token from --token or DPT_TOKEN; '' counts as absent. */
export function tokenFrom(flag: string | undefined | null, env: NodeJS.ProcessEnv = process.env): string | null {
  const t = flag ?? env.DPT_TOKEN ?? '';
  return t === '' ? null : t;
}

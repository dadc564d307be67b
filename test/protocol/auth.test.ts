import { describe, expect, it } from 'vitest';
import { generateToken, proofFor, tokenFrom, verifyProof } from '../../src/protocol/auth.js';

describe('HMAC challenge-response', () => {
  it('accepts the right answer and refuses a wrong token, nonce, role, or a non-hex answer', () => {
    const token = generateToken();
    const answer = proofFor(token, 'worker', 'n1');
    expect(verifyProof(token, 'worker', 'n1', answer)).toBe(true);
    expect(verifyProof('other', 'worker', 'n1', answer)).toBe(false);
    expect(verifyProof(token, 'worker', 'n2', answer)).toBe(false);
    expect(verifyProof(token, 'coordinator', 'n1', answer)).toBe(false); // a reflected answer is useless
    expect(verifyProof(token, 'worker', 'n1', answer.toUpperCase())).toBe(false);
    expect(verifyProof(token, 'worker', 'n1', 42)).toBe(false);
    expect(verifyProof(token, 'worker', 'n1', answer.slice(2))).toBe(false);
  });

  it('never puts the token in the answer', () => {
    const token = generateToken();
    expect(proofFor(token, 'worker', 'n')).not.toContain(token);
    expect(generateToken()).not.toBe(token);
  });

  it('takes the token from the flag, else DPT_TOKEN, treating empty as absent', () => {
    expect(tokenFrom('a', { DPT_TOKEN: 'b' })).toBe('a');
    expect(tokenFrom(undefined, { DPT_TOKEN: 'b' })).toBe('b');
    expect(tokenFrom(undefined, { DPT_TOKEN: '' })).toBeNull();
    expect(tokenFrom(undefined, {})).toBeNull();
  });
});

/** Protocol test helpers. */
import { ProtocolError } from '../../src/protocol/errors.js';

/** The ProtocolError code f throws, or null when it returns; any other error is rethrown. */
export function codeOf(f: () => unknown): string | null {
  try {
    f();
    return null;
  } catch (e) {
    if (e instanceof ProtocolError) return e.code;
    throw e;
  }
}

// Constant-time comparison of a presented secret (client secret, PIN) with the stored one. Hashing
// first gives equal-length inputs, so neither the content nor the length leaks through timing.
import { createHash, timingSafeEqual } from 'node:crypto';

export function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

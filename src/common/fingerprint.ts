import crypto from 'node:crypto';

/** The first 16 hex digits of the SHA-256 of a SAD or token: enough to match entries, useless to replay. */
export function secretFingerprint(secret: string): string {
  return crypto.createHash('sha256').update(secret, 'utf8').digest('hex').slice(0, 16);
}

// AES-256-GCM sealing of small secrets at rest (stored factors, parked approvals). The associated data
// names what a ciphertext belongs to (tenant, credential), so one cannot be moved to another's place.
import crypto from 'node:crypto';
import { SealerError } from './errors';

export class AeadError extends SealerError {}

export interface SealedBox {
  /** first 16 hex of SHA-256 of the key: names the key without revealing it */
  keyId: string;
  iv: string;
  tag: string;
  ciphertext: string;
}

export function keyIdOf(key: Buffer): string {
  return crypto.createHash('sha256').update(key).digest('hex').slice(0, 16);
}

function checkKey(key: Buffer): void {
  if (key.length !== 32) throw new AeadError(`an AES-256 key has 32 bytes, this one ${key.length}`);
}

export function sealBox(key: Buffer, plaintext: Buffer | string, aad: string): SealedBox {
  checkKey(key);
  const iv = crypto.randomBytes(12);
  const cipher = crypto.createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return {
    keyId: keyIdOf(key),
    iv: iv.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
    ciphertext: ciphertext.toString('base64'),
  };
}

/** Decrypts `box`; `what` names it in errors (never the key or the plaintext). */
export function openBox(key: Buffer, box: SealedBox, aad: string, what: string): Buffer {
  checkKey(key);
  if (box.keyId !== keyIdOf(key)) {
    throw new AeadError(`${what} is encrypted under key ${box.keyId}, the configured key is ${keyIdOf(key)}`);
  }
  try {
    const decipher = crypto.createDecipheriv('aes-256-gcm', key, Buffer.from(box.iv, 'base64'));
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(Buffer.from(box.tag, 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(box.ciphertext, 'base64')), decipher.final()]);
  } catch {
    throw new AeadError(`${what} does not decrypt: altered, or sealed for another tenant or credential`);
  }
}

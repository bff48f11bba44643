// For a person trying an approval by hand against the sandbox: the credential's current TOTP code, as
// the sandbox will check it (RFC 6238, 6 digits, HMAC-SHA-1, the sandbox's time step). Sandbox only: a
// real provider's codes come from the approver's own device.
import fs from 'node:fs/promises';
import path from 'node:path';
import { generateSync } from 'otplib';
import { SandboxError } from './sandbox-error';

export interface CurrentOtp {
  code: string;
  /** Seconds until the code's time step ends. */
  validForSec: number;
  tenant: string;
}

/** Reads `<dataDir>/secrets/<tenant>/<credentialId>.totp` (whichever tenant holds the credential). */
export async function currentOtp(
  dataDir: string,
  credentialId: string,
  periodSec = 30,
  nowMs = Date.now(),
): Promise<CurrentOtp> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(credentialId)) {
    throw new SandboxError(`"${credentialId}" is not a credential ID`);
  }
  const secrets = path.join(dataDir, 'secrets');
  let tenants: string[];
  try {
    tenants = await fs.readdir(secrets);
  } catch (cause) {
    throw new SandboxError(`${secrets} cannot be read: is ${dataDir} a sandbox data folder?`, { cause });
  }
  for (const tenant of tenants.sort()) {
    const file = path.join(secrets, tenant, `${credentialId}.totp`);
    let secret: string;
    try {
      secret = (await fs.readFile(file, 'utf8')).trim();
    } catch {
      continue;
    }
    const code = generateSync({ secret, digits: 6, period: periodSec, epoch: Math.floor(nowMs / 1000) });
    const validForSec = periodSec - (Math.floor(nowMs / 1000) % periodSec);
    return { code, validForSec, tenant };
  }
  throw new SandboxError(`credential ${credentialId} has no TOTP secret under ${secrets}`);
}

import path from 'node:path';
import {
  currentOtp,
  loadFaultsArgument,
  REVOCATION_REASONS,
  revokeCredentialInDataDir,
  startSandbox,
  type RevocationReason,
} from '../../sandbox';
import { createLogger } from '../../common/logger';

export async function sandboxCommand(opts: {
  host: string;
  port: number;
  dataDir: string;
  latencyMs: number;
  ecdsaFormat: string;
  publicUrl?: string;
  totpPeriod: number;
  tls?: boolean;
  faults?: string;
  tsaCertDays?: number;
  tsaLatencyMs?: number;
  benchTenant?: boolean;
}): Promise<void> {
  if (opts.ecdsaFormat !== 'der' && opts.ecdsaFormat !== 'raw') {
    throw new Error(`--ecdsa-format must be der or raw, not ${opts.ecdsaFormat}`);
  }
  // Checked before anything starts, so a typo in a spec is an error, not a night without faults.
  const faults = opts.faults === undefined ? undefined : await loadFaultsArgument(opts.faults);
  const sandbox = await startSandbox({
    dataDir: path.resolve(opts.dataDir),
    host: opts.host,
    port: opts.port,
    latencyMs: opts.latencyMs,
    ecdsaSignatureFormat: opts.ecdsaFormat,
    publicUrl: opts.publicUrl,
    totpPeriodSec: opts.totpPeriod,
    tls: opts.tls === true,
    faults,
    tsaCertificateDays: opts.tsaCertDays,
    tsaLatencyMs: opts.tsaLatencyMs,
    benchTenant: opts.benchTenant === true,
    logger: createLogger({ name: 'sandbox' }),
  });
  console.error(`sandbox CSC v2 provider listening at ${sandbox.url}`);
  console.error(`root certificate: ${sandbox.rootCertPath}`);
  console.error(
    `TSA ${sandbox.tsaUrl} (certificate ${sandbox.tsaCertificatePath}), OCSP ${sandbox.ocspUrl}, CRL ${sandbox.crlUrl}`,
  );
  if (faults !== undefined) {
    const { seed, rules } = sandbox.faults.state();
    console.error(
      `faults: ${rules.length} rules, seed ${seed}; GET/POST ${sandbox.oauth2Url}/sandbox/faults`,
    );
  }
  if (sandbox.tlsServerPath !== undefined) {
    // Clients verify TLS; the root is not a public CA, so they must be told to trust it.
    console.error(`HTTPS: server certificate in ${sandbox.tlsServerPath}; clients trust the root above`);
    console.error(`  (job definitions: "caFile": "${sandbox.rootCertPath}")`);
  }
  for (const c of sandbox.credentials) {
    console.error(
      `  tenant ${c.tenant}: client ${c.clientId}, credential ${c.credentialId} (${c.keyType}, SCAL${c.scal}, multisign ${c.multisign}); secrets in ${path.dirname(c.pinFile)}`,
    );
  }
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  const stats = sandbox.stats();
  await sandbox.close();
  console.error(
    `sandbox stopped: ${stats.signHash} signHash calls, ${stats.signatures} signatures, ${stats.authorize} authorisations`,
  );
}

/** `sealer sandbox revoke <credentialId>`: revokes the credential's certificate in the dataDir. */
export async function sandboxRevokeCommand(
  credentialId: string,
  opts: { dataDir: string; reason: string },
): Promise<void> {
  if (!Object.hasOwn(REVOCATION_REASONS, opts.reason)) {
    throw new Error(
      `--reason must be one of ${Object.keys(REVOCATION_REASONS).join(', ')}, not ${opts.reason}`,
    );
  }
  const held = await revokeCredentialInDataDir(
    path.resolve(opts.dataDir),
    credentialId,
    opts.reason as RevocationReason,
  );
  console.log(
    `revoked ${credentialId}: certificate serial ${held.serialHex}, ${held.reason}, since ${held.revokedAt.toISOString()}`,
  );
}

/** `sealer sandbox otp <credentialId>`: the code a person types on the sandbox's approval page now. */
export async function sandboxOtpCommand(
  credentialId: string,
  opts: { dataDir: string; totpPeriod: number },
): Promise<void> {
  const otp = await currentOtp(path.resolve(opts.dataDir), credentialId, opts.totpPeriod);
  process.stdout.write(`${otp.code}\n`);
  process.stderr.write(
    `sandbox otp: ${credentialId} (tenant ${otp.tenant}), valid for ${otp.validForSec} more s at a ${opts.totpPeriod} s step; each code is accepted once\n`,
  );
}

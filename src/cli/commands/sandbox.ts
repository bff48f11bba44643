import path from 'node:path';
import { loadFaultsArgument, startSandbox } from '../../sandbox';
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
    logger: createLogger({ name: 'sandbox' }),
  });
  console.error(`sandbox CSC v2 provider listening at ${sandbox.url}`);
  console.error(`root certificate: ${sandbox.rootCertPath}`);
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

// `sealer audit verify`: checks a tenant's audit trail (every outbox its job definitions write to), or
// one log file alone, and names the first bad line. Needs no Redis and no provider.
import path from 'node:path';
import type { Command } from 'commander';
import { loadJobs } from '../../jobs';
import { verifyAuditChain, verifyTenantAudit, type AuditVerifyResult } from '../../outbox';

export interface AuditVerifyOptions {
  tenant?: string;
  file?: string;
  jobs: string;
}

/** A path as the user would type it: relative when it is under the working folder. */
function shown(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}

function report(label: string, result: AuditVerifyResult): boolean {
  for (const f of result.files) {
    const range = f.firstSeq === undefined ? '' : ` (seq ${f.firstSeq}-${f.lastSeq})`;
    console.log(`${shown(f.file)}: ${f.entries} entries${range}`);
  }
  if (result.ok) {
    console.log(`audit ${label}: ${result.files.length} file(s), ${result.entries} entries, chain intact`);
  } else {
    console.log(`audit ${label}: INVALID at ${shown(result.file)}:${result.line}: ${result.reason}`);
  }
  return result.ok;
}

export async function auditVerifyCommand(opts: AuditVerifyOptions, command: Command): Promise<void> {
  if ((opts.tenant === undefined) === (opts.file === undefined)) {
    command.error('error: give exactly one of --tenant <tenant> or --file <file>');
  }
  if (opts.file !== undefined) {
    const result = await verifyAuditChain([path.resolve(opts.file)], { fromStart: false });
    if (!report(result.tenant ?? shown(opts.file), result)) process.exitCode = 1;
    return;
  }
  const tenant = opts.tenant!;
  const jobs = (await loadJobs(opts.jobs)).filter((j) => j.tenant === tenant);
  const roots = [...new Set(jobs.map((j) => j.outboxRoot))];
  if (roots.length === 0) throw new Error(`no job definition in ${opts.jobs} is for tenant ${tenant}`);
  for (const root of roots) {
    const result = await verifyTenantAudit(root, tenant);
    if (result.files.length === 0 && result.ok) {
      console.log(`${shown(path.join(root, tenant, 'audit'))}: no audit log yet`);
    }
    const label = roots.length > 1 ? `${tenant} (${shown(root)})` : tenant;
    if (!report(label, result)) process.exitCode = 1;
  }
}

// `sealer approve`: an approver of a tenant that keeps its own factors approves N seals for tonight.
import { approvalJobOf, approveAtPrompt, approveOnProviderPage } from '../../custody';
import { openContext, type CommonOptions } from '../context';
import { secretReader } from '../secret-input';

export async function approveCommand(
  opts: CommonOptions & {
    tenant: string;
    count: number;
    credential?: string;
    prompt?: boolean;
    approver?: string;
    providerUrl?: string;
    timeoutSec: number;
  },
): Promise<void> {
  const ctx = await openContext(opts);
  try {
    const job = approvalJobOf(ctx.jobs, opts.tenant, opts.credential);
    const base = {
      job,
      count: opts.count,
      redis: ctx.redis,
      prefix: ctx.prefix,
      logger: ctx.logger,
      defaultProviderUrl: opts.providerUrl ?? process.env.SEALER_PROVIDER_URL,
      approvedBy: opts.approver,
      onDocuments: (count: number, digest: string, waiting: number) =>
        console.log(
          `SCAL2: approving ${count} of the ${waiting} documents waiting, list digest ${digest} (the provider's page shows the same)`,
        ),
    };
    const viaPrompt =
      opts.prompt ?? (job.signing.custody.mode === 'approval' && job.signing.custody.via === 'prompt');
    let result;
    if (viaPrompt) {
      const reader = secretReader();
      try {
        result = await approveAtPrompt({
          ...base,
          ask: (factor) => reader.ask(factor === 'PIN' ? 'PIN' : 'one-time code (OTP)'),
          onOtpSent: () => console.log("a one-time code was sent to the approver's device"),
        });
      } finally {
        reader.close();
      }
    } else {
      result = await approveOnProviderPage({
        ...base,
        timeoutMs: opts.timeoutSec * 1000,
        showUrl: (url) => {
          console.log(
            `open this page, sign in as the approver of ${job.tenant} and approve ${opts.count} seals:`,
          );
          console.log(url);
          process.stderr.write('waiting for the provider to send the browser back...\n');
        },
      });
    }
    const until = new Date(result.expiresAt).toISOString();
    console.log(
      `approved: ${result.numSignatures} seals for tenant ${result.tenant}, credential ${result.credentialId}, via ${result.via}${result.approvedBy ? ` by ${result.approvedBy}` : ''}, until ${until} (approval ${result.fingerprint})` +
        (result.replacedUnused
          ? `; the earlier approval's ${result.replacedUnused} unused seals are dropped`
          : ''),
    );
  } finally {
    await ctx.release();
  }
}

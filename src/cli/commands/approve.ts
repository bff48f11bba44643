// `sealer approve`: an approver of a tenant that keeps its own factors approves N seals for tonight.
// The approval flow is custody's (src/custody/approve.ts); here the prompt is opened and lines printed.
import { approve } from '../../custody';
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
    const result = await approve({
      jobs: ctx.jobs,
      tenant: opts.tenant,
      credential: opts.credential,
      prompt: opts.prompt,
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
      openPrompt: () => {
        const reader = secretReader();
        return {
          ask: (factor) => reader.ask(factor === 'PIN' ? 'PIN' : 'one-time code (OTP)'),
          close: () => reader.close(),
        };
      },
      onOtpSent: () => console.log("a one-time code was sent to the approver's device"),
      timeoutMs: opts.timeoutSec * 1000,
      showUrl: (url) => {
        console.log(
          `open this page, sign in as the approver of ${opts.tenant} and approve ${opts.count} seals:`,
        );
        console.log(url);
        process.stderr.write('waiting for the provider to send the browser back...\n');
      },
    });
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

// One signing context per credential (provider URL + client + credential): the CSC client, the
// credential's facts, the CMS template built once, the SAD manager and the batch signer. Contexts are
// created on first use and shared by every concurrent job of that credential.
import { BatchSigner, CscClient, SadManager, type CredentialFacts } from '../csc';
import { CmsTemplate } from '../pades';
import { resolveSecret, JobConfigError, type JobDefinition } from '../jobs';
import type { Logger } from '../common/logger';

export interface SigningContext {
  key: string;
  tenant: string;
  credentialId: string;
  client: CscClient;
  facts: CredentialFacts;
  template: CmsTemplate;
  chain: Buffer[];
  sadManager: SadManager;
  signer: BatchSigner;
}

export interface SigningContextOptions {
  logger: Logger;
  /** used when a job definition names no providerUrl (SEALER_PROVIDER_URL, or the demo's sandbox) */
  defaultProviderUrl?: string;
  batchMaxWaitMs?: number;
  maxInFlight?: number;
  env?: NodeJS.ProcessEnv;
}

export class SigningContexts {
  private readonly contexts = new Map<string, Promise<SigningContext>>();

  constructor(private readonly options: SigningContextOptions) {}

  providerUrl(job: JobDefinition): string {
    const url = job.signing.providerUrl ?? this.options.defaultProviderUrl;
    if (!url) {
      throw new JobConfigError(
        `job ${job.name} (${job.file}): signing.providerUrl is not set and neither is SEALER_PROVIDER_URL`,
      );
    }
    return url;
  }

  /**
   * Local checks of every job's signing profile, for a worker to run before it takes jobs: the provider
   * URL is known and every secret reference resolves. Returns one message per problem.
   */
  async preflight(jobs: JobDefinition[]): Promise<string[]> {
    const env = this.options.env ?? process.env;
    const problems: string[] = [];
    for (const job of jobs) {
      try {
        this.providerUrl(job);
        const { clientSecret, pin, totpSecret } = job.signing;
        if (job.signing.serviceAuth.method !== 'client_credentials') {
          problems.push(`job ${job.name}: serviceAuth ${job.signing.serviceAuth.method} is not wired yet`);
        }
        for (const ref of [clientSecret, pin, totpSecret])
          if (ref) await resolveSecret(ref, job.baseDir, env);
      } catch (err) {
        problems.push(`job ${job.name}: ${(err as Error).message}`);
      }
    }
    return problems;
  }

  get(job: JobDefinition): Promise<SigningContext> {
    const key = `${this.providerUrl(job)}|${job.tenant}|${job.signing.clientId}|${job.signing.credentialId}`;
    let context = this.contexts.get(key);
    if (!context) {
      context = this.create(key, job);
      // A failed creation (provider down, bad secret) must not stick: the next job tries again.
      context.catch(() => this.contexts.delete(key));
      this.contexts.set(key, context);
    }
    return context;
  }

  private async create(key: string, job: JobDefinition): Promise<SigningContext> {
    const env = this.options.env ?? process.env;
    const logger = this.options.logger.child({ tenant: job.tenant, credentialId: job.signing.credentialId });
    const client = new CscClient({
      baseUrl: this.providerUrl(job),
      auth: {
        kind: 'client_credentials',
        clientId: job.signing.clientId,
        clientSecret: await resolveSecret(job.signing.clientSecret ?? 'env:', job.baseDir, env),
      },
      logger,
    });
    const facts = await client.credentialInfo(job.signing.credentialId);
    const { pin, totpSecret } = job.signing;
    const sadManager = new SadManager({
      client,
      credential: facts,
      // Factors are read from their references only when authorising, and not kept.
      factors: async () => ({
        pin: pin ? await resolveSecret(pin, job.baseDir, env) : undefined,
        totpSecret: totpSecret ? await resolveSecret(totpSecret, job.baseDir, env) : undefined,
        totpDigits: job.signing.totp.digits,
        totpPeriod: job.signing.totp.periodSec,
        totpAlgorithm: job.signing.totp.algorithm,
      }),
      maxSignaturesPerAuthorisation: job.signing.maxSignaturesPerAuthorisation,
      logger,
    });
    const signer = new BatchSigner({
      client,
      credential: facts,
      sadManager,
      batchSize: job.signing.batchSize,
      maxWaitMs: this.options.batchMaxWaitMs,
      maxInFlight: this.options.maxInFlight,
      logger,
    });
    return {
      key,
      tenant: job.tenant,
      credentialId: job.signing.credentialId,
      client,
      facts,
      chain: facts.certificates,
      template: CmsTemplate.fromCertificates(facts.certificates),
      sadManager,
      signer,
    };
  }

  async all(): Promise<SigningContext[]> {
    const settled = await Promise.allSettled(this.contexts.values());
    return settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  }

  async close(): Promise<void> {
    for (const context of await this.all()) await context.signer.close();
  }
}

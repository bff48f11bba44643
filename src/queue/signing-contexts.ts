// One signing context per credential (provider URL + client + credential): the CSC client, the
// credential's facts, the CMS template built once, the SAD manager and the batch signer. Contexts are
// created on first use and shared by every concurrent job of that credential.
import type { SealingObserver } from '../common/sealing-events';
import { X509Certificate } from 'node:crypto';
import { BatchSigner, CscClient, CscError, SadManager, type CredentialFacts } from '../csc';
import { CmsTemplate, Rfc3161Client, RevocationFetcher, type TimestampSource } from '../pades';
import { atLeast, LevelFinisher, ProviderTimestampSource, type PdfUpdates } from '../seal';
import { AuditLog, sadFingerprint, type AuditEntryInput } from '../outbox';
import {
  apiVersionOf,
  pemBlocks,
  pemFileOf,
  providerCaOf,
  resolveSecret,
  JobConfigError,
  type JobDefinition,
} from '../jobs';
import type { Logger } from '../common/logger';
import {
  approvalSourceFor,
  checkCustody,
  keyFactorsFor,
  serviceAuthOf,
  type ParkedApprovals,
  type RedisAuthorisationGuards,
} from '../custody';

export interface SigningContext {
  key: string;
  tenant: string;
  credentialId: string;
  custody: string;
  oneDocumentPerAuthorisation: boolean;
  client: CscClient;
  facts: CredentialFacts;
  template: CmsTemplate;
  chain: Buffer[];
  sadManager: SadManager;
  signer: BatchSigner;
  /** Timestamp sources this credential's finishers use (their request counts, for reports). */
  timestampSources: { stats: { requests: number } }[];
}

export interface SigningContextOptions {
  logger: Logger;
  /** used when a job definition names no providerUrl (SEALER_PROVIDER_URL, or the demo's sandbox) */
  defaultProviderUrl?: string;
  batchMaxWaitMs?: number;
  batchMaxDelayMs?: number;
  maxInFlight?: number;
  /** where approvals of tenants under custody `approval` are parked */
  approvals?: ParkedApprovals;
  /** one authorisation at a time, TOTP steps and latches across worker processes; default in memory */
  guards?: RedisAuthorisationGuards;
  /** signatures still wanted from a credential (queued invoices), to size numSignatures; default the most */
  demandFor?: (tenant: string, credentialId: string) => Promise<number>;
  /**
   * With demandFor: authorise each SCAL1 credential's next SAD ahead, on the next TOTP step, while the
   * current one still has signatures. The value is how many of the credential's invoices the demand
   * counts that this process has handed to its signer (asked each time when a function); those the
   * signer has not yet reserved signatures for are still wanted, and are not counted. Default: off.
   */
  authoriseAheadMargin?: number | ((tenant: string, credentialId: string) => number);
  env?: NodeJS.ProcessEnv;
  /** Most bytes loading a PDF may inflate, for the DSS and document-timestamp updates. */
  maxInflatedBytes?: number;
  /** Clock for certificate validity and timestamp checks; default the machine's. */
  now?: () => Date;
  /** Where the B-LT/B-LTA PDF updates run (the worker's thread pool); default this thread. */
  pdfUpdates?: PdfUpdates;
  /** told of signHash calls, authorisations, unused signatures and timestamp requests */
  observe?: SealingObserver;
}

/** A timestamp source that tells `observe` how long each token took, and whether it came. */
function observed<T extends TimestampSource>(
  source: T,
  tenant: string,
  kind: 'tsa' | 'provider',
  observe: SealingObserver | undefined,
): T {
  if (!observe) return source;
  const timestamp = source.timestamp.bind(source);
  source.timestamp = async (digest) => {
    const started = performance.now();
    try {
      const token = await timestamp(digest);
      observe({ type: 'timestamp', tenant, source: kind, ms: performance.now() - started, ok: true });
      return token;
    } catch (err) {
      observe({ type: 'timestamp', tenant, source: kind, ms: performance.now() - started, ok: false });
      throw err;
    }
  };
  return source;
}

export class SigningContexts {
  private readonly contexts = new Map<string, Promise<SigningContext>>();
  private readonly auditWrites = new Set<Promise<void>>();
  private readonly finishers = new Map<string, Promise<LevelFinisher>>();
  /** One per process: each certificate's revocation data is fetched once and serves every invoice. */
  private revocationFetcher?: RevocationFetcher;

  constructor(private readonly options: SigningContextOptions) {}

  /**
   * The finisher for a job's level on this context's credential, started once (signer certificate
   * checked, placeholder sized to the TSA's tokens). A failed start is not kept: the next invoice
   * starts again, and what the revocation fetcher learnt stays cached.
   */
  finisher(job: JobDefinition, ctx: SigningContext): Promise<LevelFinisher> {
    const { level, timestamp } = job.signing;
    const key = JSON.stringify([ctx.key, level, timestamp ?? null, job.trustRootPaths ?? null]);
    let finisher = this.finishers.get(key);
    if (!finisher) {
      finisher = this.startFinisher(job, ctx).catch((err: unknown) => {
        this.finishers.delete(key);
        throw err;
      });
      this.finishers.set(key, finisher);
    }
    return finisher;
  }

  private async startFinisher(job: JobDefinition, ctx: SigningContext): Promise<LevelFinisher> {
    const { level } = job.signing;
    const trustRootsDer = atLeast(level, 'B-T') ? await trustRootsOf(job) : [];
    const now = this.options.now;
    const timestamps = atLeast(level, 'B-T')
      ? await this.timestampSource(job, () => Promise.resolve(ctx.client), trustRootsDer)
      : undefined;
    if (timestamps) ctx.timestampSources.push(timestamps);
    const finisher = new LevelFinisher({
      level,
      template: ctx.template,
      chainDer: ctx.chain,
      trustRootsDer,
      timestamps,
      revocation: atLeast(level, 'B-LT') ? this.revocation() : undefined,
      maxInflatedBytes: this.options.maxInflatedBytes,
      now,
      updates: this.options.pdfUpdates,
    });
    await finisher.start();
    return finisher;
  }

  /**
   * The job's timestamp source outside a seal (archive renewal), by the same rules as sealing; the
   * provider is contacted only when the job names no TSA of its own.
   */
  async timestampSourceFor(job: JobDefinition): Promise<TimestampSource & { stats: { requests: number } }> {
    const trustRootsDer = await trustRootsOf(job);
    return this.timestampSource(job, async () => (await this.get(job)).client, trustRootsDer);
  }

  /** The process's revocation fetcher (one per process, so each certificate is fetched once). */
  revocation(): RevocationFetcher {
    return (this.revocationFetcher ??= new RevocationFetcher({ now: this.options.now }));
  }

  /** Revocation data fetched by this process so far (one fetcher serves every credential). */
  revocationStats(): { ocspRequests: number; crlRequests: number; cacheHits: number } {
    return { ...(this.revocationFetcher?.stats ?? { ocspRequests: 0, crlRequests: 0, cacheHits: 0 }) };
  }

  /** The job's TSA when it names one, else the provider's signatures/timestamp when /info lists it. */
  private async timestampSource(
    job: JobDefinition,
    clientOf: () => Promise<CscClient>,
    trustRootsDer: Buffer[],
  ): Promise<TimestampSource & { stats: { requests: number } }> {
    const env = this.options.env ?? process.env;
    const { timestamp, timestampConcurrency, timestampAttempts, requestTimeoutSec } = job.signing;
    if (timestamp) {
      const auth = timestamp.auth;
      let authorization: string | undefined;
      if (auth?.type === 'basic') {
        const password = await resolveSecret(auth.password, job.baseDir, env);
        authorization = `Basic ${Buffer.from(`${auth.username}:${password}`).toString('base64')}`;
      } else if (auth?.type === 'bearer') {
        authorization = `Bearer ${await resolveSecret(auth.token, job.baseDir, env)}`;
      }
      const client = new Rfc3161Client({
        url: timestamp.url,
        authorization,
        policyOid: timestamp.policyOid,
        caPem: await pemFileOf(job, job.timestampCaFilePath, 'signing.timestamp.caFile'),
        trustedRootsDer: trustRootsDer,
        timeoutMs: requestTimeoutSec * 1000,
        attempts: timestampAttempts,
        maxConcurrent: timestampConcurrency,
      });
      return observed(client, job.tenant, 'tsa', this.options.observe);
    }
    const client = await clientOf();
    const info = await client.info();
    if (!info.methods.includes('signatures/timestamp')) {
      throw new JobConfigError(
        `job ${job.name}: level ${job.signing.level} needs a timestamp: the provider's info does not list signatures/timestamp and signing.timestamp names no TSA`,
      );
    }
    const source = new ProviderTimestampSource({
      request: (digest, nonce) => client.timestamp(digest, nonce),
      trustRootsDer,
      maxConcurrent: timestampConcurrency,
      attempts: timestampAttempts,
      description: `provider ${client.baseUrl} signatures/timestamp`,
      now: this.options.now,
      retryable: (err) => !(err instanceof CscError) || err.kind !== 'refused',
    });
    return observed(source, job.tenant, 'provider', this.options.observe);
  }

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
   * URL is known, every secret reference resolves (service auth and key factors) and the extra CA
   * file, if any, holds certificates. Returns one message per problem.
   */
  async preflight(jobs: JobDefinition[]): Promise<{ job: JobDefinition; reason: string }[]> {
    const env = this.options.env ?? process.env;
    const problems: { job: JobDefinition; reason: string }[] = [];
    for (const job of jobs) {
      try {
        this.providerUrl(job);
        await serviceAuthOf(job, env);
        await providerCaOf(job);
        if (job.trustRootPaths) await trustRootsOf(job);
        if (job.timestampCaFilePath)
          await pemFileOf(job, job.timestampCaFilePath, 'signing.timestamp.caFile');
        await checkCustody(job, env);
      } catch (err) {
        problems.push({ job, reason: `job ${job.name}: ${(err as Error).message}` });
      }
    }
    return problems;
  }

  get(job: JobDefinition): Promise<SigningContext> {
    // JSON keeps an absent clientId (bearer or auth/login service auth) apart from any real one.
    const key = JSON.stringify([
      this.providerUrl(job),
      job.tenant,
      job.signing.clientId ?? null,
      job.signing.credentialId,
    ]);
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
      apiVersion: apiVersionOf(job.signing.apiVersion, this.providerUrl(job)),
      auth: await serviceAuthOf(job, env),
      caPem: await providerCaOf(job),
      timeoutMs: job.signing.requestTimeoutSec * 1000,
      logger,
    });
    const facts = await client.credentialInfo(job.signing.credentialId);
    const oneDocument = job.signing.oneDocumentPerAuthorisation;
    const audit = AuditLog.forTenant(job.outboxRoot, job.tenant);
    // An audit entry that cannot be written is logged loudly; the seal itself goes on. Writes in
    // flight are awaited by close(), so nothing writes into an outbox after the worker has stopped.
    const record = (entry: AuditEntryInput): void => {
      const write = audit.append(entry).then(
        () => undefined,
        (err: unknown) => {
          logger.error({ err: (err as Error).message, type: entry.type }, 'audit entry not written');
        },
      );
      this.auditWrites.add(write);
      write.finally(() => this.auditWrites.delete(write)).catch(() => undefined);
    };
    const { demandFor, authoriseAheadMargin: margin } = this.options;
    // Hashes still queued in the signer hold no signature yet: the margin leaves them in the demand.
    const made: { signer?: BatchSigner } = {};
    const handedOver =
      typeof margin === 'function' ? () => margin(job.tenant, job.signing.credentialId) : () => margin ?? 0;
    const sadManager = new SadManager({
      client,
      credential: facts,
      // Factors are read only when authorising, and not kept.
      factors: () => keyFactorsFor(job, env),
      approvals: await approvalSourceFor(job, this.options.approvals, env, record),
      onAuthorised: (a) =>
        record({
          type: 'authorisation',
          custody: job.signing.custody.mode,
          credentialId: job.signing.credentialId,
          numSignatures: a.numSignatures,
          expiresAt: new Date(a.expiresAt).toISOString(),
          sadFingerprint: sadFingerprint(a.sad),
          scal: a.scal === 2 ? 'SCAL2' : 'SCAL1',
        }),
      maxSignaturesPerAuthorisation: oneDocument ? 1 : job.signing.maxSignaturesPerAuthorisation,
      expiryMarginMs: job.signing.sadExpiryMarginSec * 1000,
      guard: this.options.guards?.for(
        { providerUrl: this.providerUrl(job), tenant: job.tenant, credentialId: job.signing.credentialId },
        logger,
      ),
      demand: demandFor && (() => demandFor(job.tenant, job.signing.credentialId)),
      ...(margin !== undefined &&
        !oneDocument && {
          authoriseAhead: { margin: () => handedOver() - (made.signer?.load().unreserved ?? 0) },
        }),
      logger,
      observe: this.options.observe,
      tenant: job.tenant,
    });
    const signer = new BatchSigner({
      client,
      credential: facts,
      sadManager,
      batchSize: oneDocument ? 1 : job.signing.batchSize,
      maxWaitMs: this.options.batchMaxWaitMs,
      maxDelayMs: this.options.batchMaxDelayMs,
      maxInFlight: this.options.maxInFlight,
      logger,
      tenant: job.tenant,
      observe: this.options.observe,
    });
    made.signer = signer;
    return {
      key,
      tenant: job.tenant,
      credentialId: job.signing.credentialId,
      custody: job.signing.custody.mode,
      oneDocumentPerAuthorisation: oneDocument,
      client,
      facts,
      chain: facts.certificates,
      template: CmsTemplate.fromCertificates(facts.certificates),
      sadManager,
      signer,
      timestampSources: [],
    };
  }

  async all(): Promise<SigningContext[]> {
    const settled = await Promise.allSettled(this.contexts.values());
    return settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  }

  async close(): Promise<void> {
    for (const context of await this.all()) await context.signer.close();
    while (this.auditWrites.size > 0) await Promise.all([...this.auditWrites]);
  }
}

/** signing.trustRoots as DER certificates; every file must hold at least one readable certificate. */
export async function trustRootsOf(job: JobDefinition): Promise<Buffer[]> {
  const roots: Buffer[] = [];
  for (const file of job.trustRootPaths ?? []) {
    const pem = (await pemFileOf(job, file, 'signing.trustRoots'))!;
    for (const block of pemBlocks(pem)) roots.push(Buffer.from(new X509Certificate(block).raw));
  }
  if (roots.length === 0) {
    throw new JobConfigError(`job ${job.name}: signing.trustRoots names no certificate`);
  }
  return roots;
}

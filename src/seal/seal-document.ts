// One document through the seal part: prepare (thread pool) → sign (the signer seam) → finish (the
// level finisher). The signer is anything with signRaw: csc's BatchSigner fits it structurally, so
// neither part imports the other. Failures come back as this part's errors, each naming its step with
// the step's own error as cause, so that the caller (the worker) decides the invoice's fate.
import { SealerError } from '../common/errors';
import type { FinishedSeal } from './level-finisher';
import { SealError } from './seal-error';
import type { PreparedSeal } from './prepared-seal';
import type { PrepareTask, PrepareTaskResult } from './prepare-task';

/** The narrow seam to whatever seals hashes: signatures in the order of `hashes`. */
export interface RawSigner {
  /** `runId` names the run the hashes belong to (the signer may count calls per run). */
  signRaw(hashes: Buffer[], runId?: string): Promise<Buffer[]>;
}

/** Where the prepare step runs (a PreparePool). */
export interface PrepareRunner {
  run(task: PrepareTask): Promise<PrepareTaskResult>;
}

/** What finishes a signed document at its level (a LevelFinisher). */
export interface SealFinisher {
  finish(prepared: PreparedSeal, signature: Buffer, source: Uint8Array): Promise<FinishedSeal>;
}

export type SealStep = 'prepare' | 'sign' | 'finish';

/**
 * A step failed; `cause` is the step's own error (a PrepareError, the signer's error, a SealError ...),
 * left as it was so that its kind still decides the fate. Nothing was sealed.
 */
export class SealStepError extends SealerError {
  constructor(
    readonly step: SealStep,
    cause: unknown,
  ) {
    super(`${step} failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/**
 * The document was prepared again to sign the hash an approval waits for, and its hash is not that one
 * any more (its inputs changed): it cannot be sealed under that approval. Nothing was signed.
 */
export class PreparedHashChanged extends SealerError {
  readonly kind = 'unsealable' as const;
  constructor(
    readonly expected: string,
    readonly actual: string,
  ) {
    super('prepared again, the document no longer has the hash its approval waited for');
  }
}

/**
 * The signer said an approval is needed before this hash can be signed. Carries the hash and the
 * signing time it was prepared with: preparing again at that time gives the same hash, which is what
 * an approval bound to hashes (SCAL2) must cover. `cause` is the signer's own error.
 */
export class AwaitingApproval extends SealerError {
  constructor(
    readonly hash: Buffer,
    readonly signingTime: string,
    cause: unknown,
  ) {
    super(
      `awaiting approval of hash ${hash.toString('hex')} (signing time ${signingTime}): ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
  }
}

export interface SealDocumentInput {
  pool: PrepareRunner;
  finisher: SealFinisher;
  signer: RawSigner;
  task: PrepareTask;
  runId?: string;
  /** hex SHA-256 an approval waits for: the prepared hash must be it, or nothing is signed */
  pendingHash?: string;
  /**
   * Whether a signer's error means "awaiting approval" (the signer's part knows its errors; this part
   * does not). Such an error comes back as AwaitingApproval; default: none does.
   */
  awaitsApproval?: (err: unknown) => boolean;
}

export interface SealDocumentResult {
  finished: FinishedSeal;
  /** The input as prepare read it: the sealed file is source || finished.update. */
  source: Uint8Array;
  prepared: PreparedSeal;
  stages: { prepareMs: number; signMs: number; finishMs: number };
}

/**
 * Prepares, signs (one hash, one signRaw call) and finishes one document. Throws SealStepError,
 * PreparedHashChanged or AwaitingApproval; nothing is sealed when it throws.
 */
export async function sealDocument(input: SealDocumentInput): Promise<SealDocumentResult> {
  const { pool, finisher, signer, task, runId, pendingHash, awaitsApproval } = input;
  let t = performance.now();
  let prepared: PreparedSeal;
  let source: Uint8Array;
  try {
    ({ prepared, source } = await pool.run(task));
  } catch (err) {
    throw new SealStepError('prepare', err);
  }
  const prepareMs = performance.now() - t;
  // A copy: the signer may hold it in a batch while the caller keeps the prepared seal.
  const hashToSign = Buffer.from(prepared.hashToSign);
  const actual = hashToSign.toString('hex');
  if (pendingHash !== undefined && pendingHash !== actual) throw new PreparedHashChanged(pendingHash, actual);
  t = performance.now();
  let signatures: Buffer[];
  try {
    signatures = await signer.signRaw([hashToSign], runId);
  } catch (err) {
    if (awaitsApproval?.(err)) throw new AwaitingApproval(hashToSign, task.signingTime, err);
    throw new SealStepError('sign', err);
  }
  // A signer that answers with other than one signature for the one hash is broken: nothing to finish.
  if (!Array.isArray(signatures) || signatures.length !== 1) {
    const count = Array.isArray(signatures) ? signatures.length : 'no list of';
    throw new SealStepError('sign', new SealError(`the signer returned ${count} signatures for 1 hash`));
  }
  const signature = signatures[0];
  if (!Buffer.isBuffer(signature)) {
    throw new SealStepError('sign', new SealError('the signer returned a signature that is not bytes'));
  }
  const signMs = performance.now() - t;
  t = performance.now();
  let finished: FinishedSeal;
  try {
    finished = await finisher.finish(prepared, signature, source);
  } catch (err) {
    throw new SealStepError('finish', err);
  }
  return { finished, source, prepared, stages: { prepareMs, signMs, finishMs: performance.now() - t } };
}

// The prepare step, run in a piscina worker thread so PDF parsing and hashing use every core:
// placeholder in one incremental update, byte-range digest, CAdES signed attributes and their digest.
// Input and output are plain serialisable values: the PreparedSeal holds the update only, and the
// input's bytes go back to the caller (which delivers input || update) moved, not copied.
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import fsSync, { constants as fsConstants } from 'node:fs';
import Piscina from 'piscina';
import { SealerError } from '../common/errors';
import {
  appendDss,
  PdfError,
  PdfLimitError,
  prepareDocTimestamp,
  prepareSealUpdate,
  type DssContent,
} from '../pdf';
import { CmsTemplate, digestToSign } from '../pades';
import type { PreparedSeal } from './prepared-seal';

export interface PrepareTask {
  sourcePath: string;
  sourceSha256: string;
  signingTime: string;
  /** the credential's chain, leaf first (DER) */
  chain: Uint8Array[];
  reason: string;
  location: string;
  name: string;
  signatureBytes: number;
  /** a visible seal (角印): drawn from `text`, or the PNG at `imagePath` (read here, in the thread) */
  appearance?: {
    page: number;
    x: number;
    y: number;
    size: number;
    text?: string;
    imagePath?: string;
  };
}

/** Most bytes a tenant's seal image may have: a stamp, not a photograph. */
const MAX_SEAL_IMAGE_BYTES = 2 * 1024 * 1024;

export interface PrepareTaskResult {
  prepared: PreparedSeal;
  /** The input as read (and checked against sourceSha256): the prefix of the sealed file. */
  source: Uint8Array;
}

/** Limits checked inside the thread (the heap cap and the deadline are the pool's). */
export interface PrepareInputLimits {
  /** Most bytes the source file may have; checked by stat before anything is read. */
  maxInputBytes: number;
  /** Most bytes loading the PDF may inflate in total (see src/pdf/inflate-limit.ts). */
  maxInflatedBytes: number;
}

/**
 * What a failed prepare means for its invoice:
 * - `unsealable`: the input cannot be sealed as it is (not a PDF we can update, over a limit, a
 *   decompression bomb, changed or gone since enqueue, unreadable by permission): retrying won't help;
 * - `transient`: the file was briefly unreadable (descriptors exhausted, a busy or flaky share) or
 *   the attempt was cut short from outside (pool closing, thread lost): another attempt may succeed.
 */
export type PrepareErrorKind = 'unsealable' | 'transient';

/** Which limit an input went over; each is configurable on the PreparePool. */
export type PrepareLimit = 'inputBytes' | 'inflatedBytes' | 'heap' | 'deadline';

/** A PrepareError as plain data: structured clone keeps only an Error's message (and cause), so the
 * thread returns this and the pool rebuilds the error on the other side. */
export interface PrepareFailure {
  kind: PrepareErrorKind;
  sourcePath: string;
  message: string;
  limit?: PrepareLimit;
  /** errno code of an I/O failure (ENOENT, EMFILE, ...) */
  code?: string;
  sourceChanged?: boolean;
}

export class PrepareError extends SealerError {
  readonly kind: PrepareErrorKind;
  readonly sourcePath: string;
  readonly limit?: PrepareLimit;
  readonly code?: string;

  constructor(fields: Omit<PrepareFailure, 'sourceChanged'> & { cause?: unknown }) {
    super(fields.message, { cause: fields.cause });
    this.kind = fields.kind;
    this.sourcePath = fields.sourcePath;
    this.limit = fields.limit;
    this.code = fields.code;
  }

  get retryable(): boolean {
    return this.kind === 'transient';
  }

  toFailure(): PrepareFailure {
    return {
      kind: this.kind,
      sourcePath: this.sourcePath,
      message: this.message,
      ...(this.limit && { limit: this.limit }),
      ...(this.code && { code: this.code }),
      ...(this instanceof SourceChangedError && { sourceChanged: true }),
    };
  }

  static fromFailure(failure: PrepareFailure): PrepareError {
    if (failure.sourceChanged) return new SourceChangedError(failure.sourcePath, failure.message);
    return new PrepareError(failure);
  }
}

/** Thrown when the source on disk is not the file that was enqueued: never sealable as enqueued. */
export class SourceChangedError extends PrepareError {
  constructor(sourcePath: string, message: string) {
    super({ kind: 'unsealable', sourcePath, message });
  }
}

/**
 * errno codes worth another attempt: descriptor exhaustion (EMFILE, ENFILE) passes as other work
 * closes files; EAGAIN, EBUSY, EINTR are "try again" by definition; EIO, ETIMEDOUT and ESTALE are what
 * network shares (where core-system exports often live) return while they recover. Anything else, such
 * as ENOENT (the producer hashed the file at enqueue, so it was moved or deleted since: like a changed
 * source), EACCES, EISDIR or ELOOP, stays wrong until someone acts, so it is unsealable; ops re-queues.
 */
export const TRANSIENT_IO_CODES: ReadonlySet<string> = new Set([
  'EMFILE',
  'ENFILE',
  'EAGAIN',
  'EBUSY',
  'EINTR',
  'EIO',
  'ETIMEDOUT',
  'ESTALE',
]);

/** The one place a prepare failure inside the thread gets its kind. */
export function toPrepareError(err: unknown, sourcePath: string): PrepareError {
  if (err instanceof PrepareError) return err;
  const message = (err as Error)?.message ?? String(err);
  if (err instanceof PdfLimitError) {
    return new PrepareError({
      kind: 'unsealable',
      sourcePath,
      limit: err.limit,
      message: `${sourcePath}: ${message}`,
      cause: err,
    });
  }
  if (err instanceof PdfError) {
    return new PrepareError({
      kind: 'unsealable',
      sourcePath,
      message: `${sourcePath}: ${message}`,
      cause: err,
    });
  }
  const code = (err as NodeJS.ErrnoException)?.code;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) {
    return new PrepareError({
      kind: TRANSIENT_IO_CODES.has(code) ? 'transient' : 'unsealable',
      sourcePath,
      code,
      message: `${sourcePath}: cannot be read (${code}): ${message}`,
      cause: err,
    });
  }
  // Anything else (a bad certificate chain for the CMS template, a library bug) fails the same way on
  // every attempt.
  return new PrepareError({
    kind: 'unsealable',
    sourcePath,
    message: `${sourcePath}: prepare failed: ${message}`,
    cause: err,
  });
}

/**
 * Reads the source whole, refusing a non-file or one over the cap before reading a byte of it.
 * Synchronous on purpose: this thread does nothing else meanwhile, and its reads then never queue in
 * libuv's four shared threads behind the main thread's fsyncs (which made a 0.3 ms prepare wait tens
 * of milliseconds under load). A read that hangs (a dead share) is ended by the pool's deadline.
 */
function readSource(sourcePath: string, maxInputBytes: number): Buffer {
  // O_NONBLOCK: opening a FIFO placed where a PDF should be must not hang the thread.
  const fd = fsSync.openSync(sourcePath, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  try {
    const stat = fsSync.fstatSync(fd);
    if (!stat.isFile()) {
      throw new PrepareError({
        kind: 'unsealable',
        sourcePath,
        message: `${sourcePath}: not a regular file`,
      });
    }
    if (stat.size > maxInputBytes) {
      throw new PrepareError({
        kind: 'unsealable',
        sourcePath,
        limit: 'inputBytes',
        message: `${sourcePath}: ${stat.size} bytes is over the input cap maxInputBytes (${maxInputBytes} bytes)`,
      });
    }
    // Exactly the size stat gave: a file growing meanwhile cannot make us read past the cap (and then
    // fails the digest check as changed). Unpooled: its ArrayBuffer is transferred to the caller, and
    // transferring a pooled slab would detach every other small Buffer of this thread.
    const buffer = Buffer.allocUnsafeSlow(stat.size);
    let filled = 0;
    while (filled < buffer.length) {
      const bytesRead = fsSync.readSync(fd, buffer, filled, buffer.length - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return buffer.subarray(0, filled);
  } finally {
    fsSync.closeSync(fd);
  }
}

const sealImages = new Map<string, Promise<Buffer>>();

/** The tenant's seal image, read once per thread; an unreadable or oversized one fails as the input's
 * problem would (unsealable until someone fixes the job's file). */
function readSealImage(imagePath: string): Promise<Buffer> {
  let image = sealImages.get(imagePath);
  if (!image) {
    image = (async () => {
      const stat = await fs.stat(imagePath).catch((cause: unknown) => {
        throw new PdfError(`seal image ${imagePath} cannot be read: ${(cause as Error).message}`, { cause });
      });
      if (stat.size > MAX_SEAL_IMAGE_BYTES) {
        throw new PdfError(`seal image ${imagePath} is ${stat.size} bytes, over ${MAX_SEAL_IMAGE_BYTES}`);
      }
      return fs.readFile(imagePath);
    })().catch((err: unknown) => {
      sealImages.delete(imagePath);
      throw err;
    });
    sealImages.set(imagePath, image);
  }
  return image;
}

/** CMS templates of the chains this thread has seen (a night has one per credential). */
const templates: { chain: Buffer[]; template: CmsTemplate }[] = [];
const MAX_TEMPLATES = 64;

/** The template of exactly this chain: compared byte for byte, which costs less than hashing it. */
function templateFor(chain: Uint8Array[]): CmsTemplate {
  const known = templates.find(
    (t) => t.chain.length === chain.length && t.chain.every((c, i) => c.equals(chain[i]!)),
  );
  if (known) return known.template;
  const copy = chain.map((c) => Buffer.from(c));
  const template = CmsTemplate.fromCertificates(copy);
  if (templates.length >= MAX_TEMPLATES) templates.shift();
  templates.push({ chain: copy, template });
  return template;
}

/** Prepares one invoice; throws PrepareError (any other error is classified by toPrepareError). */
export async function prepareTask(task: PrepareTask, limits: PrepareInputLimits): Promise<PrepareTaskResult> {
  const input = readSource(task.sourcePath, limits.maxInputBytes);
  const actual = crypto.createHash('sha256').update(input).digest('hex');
  if (actual !== task.sourceSha256) {
    throw new SourceChangedError(
      task.sourcePath,
      `${task.sourcePath} changed since it was enqueued (SHA-256 ${actual}, expected ${task.sourceSha256})`,
    );
  }
  let appearance;
  if (task.appearance) {
    const { imagePath, ...rest } = task.appearance;
    appearance = { ...rest, ...(imagePath && { imagePng: await readSealImage(imagePath) }) };
  }
  const prepared = await prepareSealUpdate(input, {
    ...(appearance && { appearance }),
    signingTime: new Date(task.signingTime),
    reason: task.reason,
    location: task.location,
    name: task.name,
    signatureBytes: task.signatureBytes,
    maxInflatedBytes: limits.maxInflatedBytes,
  });
  const signedAttributes = templateFor(task.chain).signedAttributes(prepared.contentDigest);
  return {
    prepared: {
      inputLength: prepared.inputLength,
      update: prepared.update,
      byteRange: prepared.byteRange,
      contentDigest: prepared.contentDigest,
      signatureBytes: prepared.signatureBytes,
      signedAttributes,
      hashToSign: digestToSign(signedAttributes),
    },
    source: input,
  };
}

/** What the pool sends a thread: the task and its limits. */
export interface PrepareThreadTask extends PrepareTask {
  limits: PrepareInputLimits;
}

export type PrepareOutcome = { ok: true; result: PrepareTaskResult } | { ok: false; failure: PrepareFailure };

/** The piscina entry point: never throws for a failed prepare, so the error's kind survives the trip. */
export async function prepareInThread(task: PrepareThreadTask): Promise<PrepareOutcome> {
  const outcome = await outcomeOf(task);
  const movable = movableSource(outcome);
  return movable ? moved(outcome, [movable]) : outcome;
}

async function outcomeOf(task: PrepareThreadTask): Promise<PrepareOutcome> {
  try {
    return { ok: true, result: await prepareTask(task, task.limits) };
  } catch (err) {
    return { ok: false, failure: toPrepareError(err, task.sourcePath).toFailure() };
  }
}

/** The input's ArrayBuffer, moved to the caller (no copy) when readSource allocated it for this alone. */
function movableSource(outcome: PrepareOutcome): ArrayBufferLike | undefined {
  if (!outcome.ok) return undefined;
  const source = outcome.result.source;
  return source.byteOffset === 0 && source.byteLength === source.buffer.byteLength
    ? source.buffer
    : undefined;
}

function moved<T>(value: T, transfer: ArrayBufferLike[]): T {
  const movable = {
    [Piscina.transferableSymbol]: transfer,
    [Piscina.valueSymbol]: value,
  } as unknown as Parameters<typeof Piscina.move>[0];
  return Piscina.move(movable) as unknown as T;
}

/** Prepare tasks that waited together for one thread: one hand-over there and back for all of them. */
export interface PrepareBatch {
  tasks: PrepareThreadTask[];
  /** A task is not started once the batch has run this long (ms): it comes back not started, and the
   * pool runs it again alone, so a batch of large inputs does not run into the deadline as a whole. */
  startWithinMs: number;
}

export type BatchOutcome = PrepareOutcome | { ok: false; notStarted: true };

/** The piscina entry point for a batch: each task's outcome in order; never throws. */
export async function prepareManyInThread(batch: PrepareBatch): Promise<BatchOutcome[]> {
  const started = performance.now();
  const outcomes: BatchOutcome[] = [];
  const transfer: ArrayBufferLike[] = [];
  for (const task of batch.tasks) {
    if (outcomes.length > 0 && performance.now() - started > batch.startWithinMs) {
      outcomes.push({ ok: false, notStarted: true });
      continue;
    }
    const outcome = await outcomeOf(task);
    const movable = movableSource(outcome);
    if (movable) transfer.push(movable);
    outcomes.push(outcome);
  }
  return transfer.length > 0 ? moved(outcomes, transfer) : outcomes;
}

/** A B-LT or B-LTA update of a file just sealed: the DSS, or a document timestamp placeholder. */
export type UpdateTask =
  | { kind: 'dss'; bytes: Uint8Array; content: DssContent }
  | { kind: 'docTimestamp'; bytes: Uint8Array; signatureBytes: number };

export interface UpdateTaskResult {
  bytes: Uint8Array;
  byteRange?: [number, number, number, number];
  contentDigest?: Uint8Array;
  inputLength?: number;
  signatureBytes?: number;
}

export interface UpdateThreadTask {
  /** for messages: which invoice's file this is */
  sourcePath: string;
  task: UpdateTask;
  limits: PrepareInputLimits;
}

export type UpdateOutcome = { ok: true; result: UpdateTaskResult } | { ok: false; failure: PrepareFailure };

/** The piscina entry point for updates after signing; like prepareInThread, never throws. */
export async function updateInThread(t: UpdateThreadTask): Promise<UpdateOutcome> {
  try {
    const { task } = t;
    if (task.kind === 'dss') {
      const content: DssContent = {
        certs: task.content.certs.map((c) => Buffer.from(c)),
        ocsps: task.content.ocsps.map((c) => Buffer.from(c)),
        crls: task.content.crls.map((c) => Buffer.from(c)),
        ...(task.content.vri && {
          vri: new Map(
            [...task.content.vri].map(([key, v]) => [
              key,
              {
                ...(v.certs && { certs: v.certs.map((c) => Buffer.from(c)) }),
                ...(v.ocsps && { ocsps: v.ocsps.map((c) => Buffer.from(c)) }),
                ...(v.crls && { crls: v.crls.map((c) => Buffer.from(c)) }),
                ...(v.tu && { tu: v.tu }),
              },
            ]),
          ),
        }),
      };
      const bytes = await appendDss(Buffer.from(task.bytes), content, {
        maxInflatedBytes: t.limits.maxInflatedBytes,
      });
      return { ok: true, result: { bytes } };
    }
    const prepared = await prepareDocTimestamp(Buffer.from(task.bytes), {
      signatureBytes: task.signatureBytes,
      maxInflatedBytes: t.limits.maxInflatedBytes,
    });
    return {
      ok: true,
      result: {
        bytes: prepared.bytes,
        byteRange: prepared.byteRange,
        contentDigest: prepared.contentDigest,
        inputLength: prepared.inputLength,
        signatureBytes: prepared.signatureBytes,
      },
    };
  } catch (err) {
    return { ok: false, failure: toPrepareError(err, t.sourcePath).toFailure() };
  }
}

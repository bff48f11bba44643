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
  renderQualifiedInvoice,
  type DssContent,
} from '../pdf';
import { CmsTemplate, digestToSign } from '../pades';
import { decodeInvoiceRecord, MAX_RECORD_BYTES, type RecordLocation } from './invoice-record';
import type { PreparedSeal } from './prepared-seal';

export interface PrepareTask {
  /** the PDF, or (`render`) the invoice spool holding the record to render */
  sourcePath: string;
  /** of the PDF, or of the record's bytes */
  sourceSha256: string;
  /** a rendered invoice: its record's place in the spool at sourcePath, and the tenant's logo */
  render?: RenderSource;
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

/** Where a rendered invoice's record is, and the logo file its template names by digest. */
export interface RenderSource extends RecordLocation {
  /** the job's invoice.template.logo, resolved */
  logoPath?: string;
}

/** Most bytes a tenant's seal image may have: a stamp, not a photograph. */
const MAX_SEAL_IMAGE_BYTES = 2 * 1024 * 1024;
/** Most bytes an invoice logo may have (the renderer's own cap). */
const MAX_LOGO_BYTES = 4 * 1024 * 1024;

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
function readSource(sourcePath: string, maxInputBytes: number, slice?: RecordLocation): Buffer {
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
    const start = slice?.offset ?? 0;
    const size = slice?.length ?? stat.size;
    const cap = slice ? Math.min(maxInputBytes, MAX_RECORD_BYTES) : maxInputBytes;
    if (size > cap) {
      throw new PrepareError({
        kind: 'unsealable',
        sourcePath,
        limit: 'inputBytes',
        message: `${sourcePath}: ${size} bytes is over the input cap ${slice ? 'for an invoice record' : 'maxInputBytes'} (${cap} bytes)`,
      });
    }
    if (slice && start + size > stat.size) {
      throw new SourceChangedError(
        sourcePath,
        `${sourcePath}: the invoice spool is ${stat.size} bytes, too short for the record at ${start} (${size} bytes): it changed since it was enqueued`,
      );
    }
    // Exactly the size stat gave: a file growing meanwhile cannot make us read past the cap (and then
    // fails the digest check as changed). Unpooled: its ArrayBuffer is transferred to the caller, and
    // transferring a pooled slab would detach every other small Buffer of this thread.
    const buffer = Buffer.allocUnsafeSlow(size);
    let filled = 0;
    while (filled < buffer.length) {
      const bytesRead = fsSync.readSync(fd, buffer, filled, buffer.length - filled, start + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return buffer.subarray(0, filled);
  } finally {
    fsSync.closeSync(fd);
  }
}

interface ImageFile {
  bytes: Buffer;
  sha256: string;
}
const images = new Map<string, Promise<ImageFile>>();

/** A tenant's image (seal stamp, invoice logo), read once per thread; an unreadable or oversized one
 * fails as the input's problem would (unsealable until someone fixes the job's file). */
function readImage(imagePath: string, what: string, maxBytes: number): Promise<ImageFile> {
  let image = images.get(imagePath);
  if (!image) {
    image = (async () => {
      const stat = await fs.stat(imagePath).catch((cause: unknown) => {
        throw new PdfError(`${what} ${imagePath} cannot be read: ${(cause as Error).message}`, { cause });
      });
      if (stat.size > maxBytes) {
        throw new PdfError(`${what} ${imagePath} is ${stat.size} bytes, over ${maxBytes}`);
      }
      const bytes = await fs.readFile(imagePath);
      return { bytes, sha256: crypto.createHash('sha256').update(bytes).digest('hex') };
    })().catch((err: unknown) => {
      images.delete(imagePath);
      throw err;
    });
    images.set(imagePath, image);
  }
  return image;
}

/**
 * Reads a rendered invoice's record (checked against the job's digest) and renders it: the PDF the
 * seal then follows, exactly as a PDF export's file would be. The logo must be the one enqueued.
 */
async function renderedSource(
  task: PrepareTask,
  render: RenderSource,
  limits: PrepareInputLimits,
): Promise<Buffer> {
  const bytes = readSource(task.sourcePath, limits.maxInputBytes, render);
  checkDigest(task, bytes, `the invoice record at ${render.offset} of ${task.sourcePath}`);
  const where = `${task.sourcePath} at ${render.offset}`;
  const { document, template } = decodeInvoiceRecord(bytes, where);
  const { logoSha256, ...look } = template;
  let logo: Buffer | undefined;
  if (logoSha256 !== undefined) {
    if (render.logoPath === undefined) {
      throw new PdfError(`${where}: the invoice was enqueued with a logo; the job's template has none now`);
    }
    let image = await readImage(render.logoPath, 'invoice logo', MAX_LOGO_BYTES);
    if (image.sha256 !== logoSha256) {
      // This thread may hold the logo from before ops replaced it (the producer read the new one):
      // read it again once before calling it changed.
      images.delete(render.logoPath);
      image = await readImage(render.logoPath, 'invoice logo', MAX_LOGO_BYTES);
    }
    if (image.sha256 !== logoSha256) {
      throw new SourceChangedError(
        task.sourcePath,
        `invoice logo ${render.logoPath} changed since the invoice was enqueued (SHA-256 ${image.sha256}, expected ${logoSha256})`,
      );
    }
    logo = image.bytes;
  }
  const pdf = await renderQualifiedInvoice(document, { ...look, ...(logo && { logo }) });
  // Its own ArrayBuffer, exactly the PDF: moved to the caller, not copied.
  if (pdf.byteOffset === 0 && pdf.byteLength === pdf.buffer.byteLength) {
    return Buffer.from(pdf.buffer, 0, pdf.byteLength);
  }
  const own = Buffer.allocUnsafeSlow(pdf.byteLength);
  own.set(pdf);
  return own;
}

function checkDigest(task: PrepareTask, input: Uint8Array, what: string): void {
  const actual = crypto.createHash('sha256').update(input).digest('hex');
  if (actual !== task.sourceSha256) {
    throw new SourceChangedError(
      task.sourcePath,
      `${what} changed since it was enqueued (SHA-256 ${actual}, expected ${task.sourceSha256})`,
    );
  }
}

/** The PDF a task seals: its source file, or the invoice its record renders. */
async function inputOf(task: PrepareTask, limits: PrepareInputLimits): Promise<Buffer> {
  if (task.render) return renderedSource(task, task.render, limits);
  const input = readSource(task.sourcePath, limits.maxInputBytes);
  checkDigest(task, input, task.sourcePath);
  return input;
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
  const input = await inputOf(task, limits);
  let appearance;
  if (task.appearance) {
    const { imagePath, ...rest } = task.appearance;
    appearance = {
      ...rest,
      ...(imagePath && { imagePng: (await readImage(imagePath, 'seal image', MAX_SEAL_IMAGE_BYTES)).bytes }),
    };
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

/** What the pool sends a thread to render an invoice alone (no seal prepared). */
export interface RenderThreadTask {
  task: PrepareTask;
  limits: PrepareInputLimits;
}

export type RenderOutcome = { ok: true; result: Uint8Array } | { ok: false; failure: PrepareFailure };

/** The piscina entry point for rendering alone: the PDF a rendered invoice's record gives (the same
 * bytes its seal follows), e.g. to compare with a sealed file a crash left behind. Never throws. */
export async function renderInThread(t: RenderThreadTask): Promise<RenderOutcome> {
  try {
    const bytes = await inputOf(t.task, t.limits);
    const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
    return whole ? moved({ ok: true, result: bytes }, [bytes.buffer]) : { ok: true, result: bytes };
  } catch (err) {
    return { ok: false, failure: toPrepareError(err, t.task.sourcePath).toFailure() };
  }
}

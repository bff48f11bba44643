// How prepare failures are classified, and why they travel as data: the kind decides an invoice's fate
// (unsealable: fail now; transient: retry), so it must survive the trip from the thread.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PdfError, PdfLimitError } from '../../src/pdf';
import {
  MIN_HEAP_MB,
  PrepareConfigError,
  PrepareError,
  PreparePool,
  SourceChangedError,
  TRANSIENT_IO_CODES,
} from '../../src/seal/prepare-pool';
import { toPrepareError } from '../../src/seal/prepare-task';

const TIMEOUT = { timeout: 120_000 };
const path = '/exports/sakura/INV-1.pdf';

function ioError(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: open '${path}'`), { code });
}

test('I/O errors: a brief shortage or a flaky share is transient, anything else unsealable', TIMEOUT, () => {
  for (const code of ['EMFILE', 'ENFILE', 'EAGAIN', 'EBUSY', 'EINTR', 'EIO', 'ETIMEDOUT', 'ESTALE']) {
    const err = toPrepareError(ioError(code), path);
    assert.equal(err.kind, 'transient', code);
    assert.equal(err.retryable, true, code);
    assert.equal(err.code, code);
    assert.match(err.message, new RegExp(`^${path}: cannot be read \\(${code}\\)`));
    assert.ok(TRANSIENT_IO_CODES.has(code));
  }
  for (const code of ['ENOENT', 'EACCES', 'EPERM', 'EISDIR', 'ELOOP', 'ENAMETOOLONG']) {
    const err = toPrepareError(ioError(code), path);
    assert.equal(err.kind, 'unsealable', code);
    assert.equal(err.code, code);
  }
});

test('PDF errors and limits are unsealable, with the limit named; the cause stays chained', TIMEOUT, () => {
  const parse = new PdfError('input is not a PDF: no %PDF- header in the first 1024 bytes');
  const notPdf = toPrepareError(parse, path);
  assert.equal(notPdf.kind, 'unsealable');
  assert.equal(notPdf.limit, undefined);
  assert.equal(notPdf.cause, parse);
  assert.equal(notPdf.message, `${path}: ${parse.message}`);

  const bomb = toPrepareError(
    new PdfLimitError('input PDF inflates to more than 1 bytes', 'inflatedBytes', 1),
    path,
  );
  assert.equal(bomb.kind, 'unsealable');
  assert.equal(bomb.limit, 'inflatedBytes');

  const unknown = toPrepareError(new TypeError('x is undefined'), path);
  assert.equal(unknown.kind, 'unsealable');
  assert.match(unknown.message, /prepare failed: x is undefined/);
  assert.equal(toPrepareError(notPdf, path), notPdf, 'a PrepareError is kept as it is');
});

test('a PrepareError crosses a structured clone as data, not as an Error', TIMEOUT, () => {
  const transient = toPrepareError(ioError('EMFILE'), path);
  // What a worker thread's Error becomes on the other side: kind and code are gone.
  const cloned = structuredClone(transient) as unknown as Record<string, unknown>;
  assert.equal(cloned.kind, undefined);
  assert.equal(cloned.code, undefined);

  const back = PrepareError.fromFailure(structuredClone(transient.toFailure()));
  assert.ok(back instanceof PrepareError);
  assert.equal(back.kind, 'transient');
  assert.equal(back.code, 'EMFILE');
  assert.equal(back.message, transient.message);

  const limit = PrepareError.fromFailure(
    structuredClone(
      new PrepareError({
        kind: 'unsealable',
        sourcePath: path,
        limit: 'inputBytes',
        message: 'big',
      }).toFailure(),
    ),
  );
  assert.equal(limit.limit, 'inputBytes');

  const changed = PrepareError.fromFailure(
    structuredClone(new SourceChangedError(path, 'changed').toFailure()),
  );
  assert.ok(changed instanceof SourceChangedError);
  assert.equal(changed.kind, 'unsealable');
  assert.equal(changed.sourcePath, path);
});

test('pool limits are checked before any thread starts', TIMEOUT, () => {
  assert.throws(() => new PreparePool({ maxHeapMb: MIN_HEAP_MB - 1 }), PrepareConfigError);
  assert.throws(
    () => new PreparePool({ deadlineMs: 0 }),
    /deadlineMs must be an integer of at least 1, got 0/,
  );
  assert.throws(() => new PreparePool({ maxInputBytes: 1.5 }), PrepareConfigError);
  assert.throws(() => new PreparePool({ maxInflatedBytes: Number.NaN }), PrepareConfigError);
  assert.throws(() => new PreparePool({ threads: 0 }), PrepareConfigError);
});

// Validation at the archive's edge: a search is checked once, whichever storage answers it, and a bad
// value is refused naming its field rather than silently matching nothing. Entries are checked too,
// since a wrong amount or date in the index would make a 電子帳簿保存法 search quietly incomplete.
import type { ArchiveQuery, ArchivedInvoice } from './archive-index';
import { ArchiveError, ArchiveQueryError } from './archive-error';
import { foldCustomer } from './fold-customer';

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 1000;
/** `total` counts at most this many matches unless an archive is opened with another countCap. */
export const DEFAULT_COUNT_CAP = 10_000;

/** A query whose values have been checked; `customer` is folded, and absent when it was blank. */
export interface CheckedQuery {
  tenant: string;
  issueDateFrom?: string;
  issueDateTo?: string;
  amountMin?: number;
  amountMax?: number;
  customer?: string;
  limit: number;
  offset: number;
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** True for a real calendar date written YYYY-MM-DD (2024-02-30 is not one). */
export function isIsoDate(text: string): boolean {
  const m = DATE.exec(text);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(y, mo - 1, d));
  return date.getUTCFullYear() === y && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d;
}

function checkDate(field: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !isIsoDate(value))
    throw new ArchiveQueryError(field, `must be a date YYYY-MM-DD, not ${JSON.stringify(value)}`);
  return value;
}

function checkAmount(field: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value))
    throw new ArchiveQueryError(field, `must be a whole number of yen, not ${JSON.stringify(value)}`);
  return value;
}

function checkCount(field: string, value: unknown, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > max)
    throw new ArchiveQueryError(
      field,
      `must be a whole number from 0 to ${max}, not ${JSON.stringify(value)}`,
    );
  return value;
}

export function checkQuery(query: ArchiveQuery): CheckedQuery {
  if (typeof query.tenant !== 'string' || query.tenant === '')
    throw new ArchiveQueryError('tenant', 'is required');
  const issueDateFrom = checkDate('issueDateFrom', query.issueDateFrom);
  const issueDateTo = checkDate('issueDateTo', query.issueDateTo);
  if (issueDateFrom !== undefined && issueDateTo !== undefined && issueDateFrom > issueDateTo)
    throw new ArchiveQueryError('issueDateFrom', `${issueDateFrom} is after issueDateTo ${issueDateTo}`);
  const amountMin = checkAmount('amountMin', query.amountMin);
  const amountMax = checkAmount('amountMax', query.amountMax);
  if (amountMin !== undefined && amountMax !== undefined && amountMin > amountMax)
    throw new ArchiveQueryError('amountMin', `${amountMin} is more than amountMax ${amountMax}`);
  if (query.customer !== undefined && typeof query.customer !== 'string')
    throw new ArchiveQueryError('customer', 'must be text');
  // A blank customer box means "any customer", as an empty form field does.
  const folded = query.customer === undefined ? '' : foldCustomer(query.customer).trim();
  return {
    tenant: query.tenant,
    issueDateFrom,
    issueDateTo,
    amountMin,
    amountMax,
    customer: folded === '' ? undefined : folded,
    limit: checkCount('limit', query.limit, DEFAULT_LIMIT, MAX_LIMIT),
    offset: checkCount('offset', query.offset, 0, Number.MAX_SAFE_INTEGER),
  };
}

/** Refuses an entry that the index could not search correctly, naming the invoice and the field. */
export function checkEntry(entry: ArchivedInvoice): void {
  const fail = (field: string, why: string): never => {
    throw new ArchiveError(
      `archive entry for invoice ${JSON.stringify(entry.invoiceNumber)} of tenant ${JSON.stringify(entry.tenant)}: ${field} ${why}`,
    );
  };
  const required = [
    'tenant',
    'invoiceNumber',
    'customer',
    'file',
    'sealedSha256',
    'sourceSha256',
    'level',
    'sealedAt',
    'certificateSerial',
    'job',
    'runId',
  ] as const;
  for (const field of required) {
    if (typeof entry[field] !== 'string' || (field !== 'customer' && entry[field] === ''))
      fail(field, 'is required');
  }
  if (!Number.isSafeInteger(entry.amount))
    fail('amount', `must be a whole number of yen, not ${entry.amount}`);
  if (entry.issueDate !== undefined && !isIsoDate(entry.issueDate))
    fail('issueDate', `must be a date YYYY-MM-DD, not ${JSON.stringify(entry.issueDate)}`);
  if (entry.registrationNumber !== undefined && !/^T\d{13}$/.test(entry.registrationNumber))
    fail('registrationNumber', `must be T and 13 digits, not ${JSON.stringify(entry.registrationNumber)}`);
}

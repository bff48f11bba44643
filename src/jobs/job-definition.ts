// The schema of one scheduled job (jobs/<name>.json): when it runs, whose export it reads and how,
// which credential seals it, where the sealed PDFs go. Validated once at load; typed inside.
import cron from 'node-cron';
import { z } from 'zod';
import { secretRefSchema } from './secret-ref';

const name = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lowercase letters, digits and dashes');

const timeZone = z.string().refine((tz) => {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}, 'unknown IANA time zone');

export const signingProfileSchema = z.strictObject({
  /** CSC API v2 base URL ending in /csc/v2; when absent, SEALER_PROVIDER_URL (or the demo's sandbox). */
  providerUrl: z.url().optional(),
  clientId: z.string().min(1),
  clientSecret: secretRefSchema,
  credentialId: z.string().min(1),
  pin: secretRefSchema.optional(),
  totpSecret: secretRefSchema.optional(),
  /** the TOTP parameters the provider set up the credential with (RFC 6238) */
  totp: z
    .strictObject({
      digits: z.int().min(6).max(10).default(6),
      periodSec: z.int().min(1).max(300).default(30),
      algorithm: z.enum(['SHA1', 'SHA256', 'SHA512']).default('SHA1'),
    })
    .default({ digits: 6, periodSec: 30, algorithm: 'SHA1' }),
  /** hashes per signatures/signHash call */
  batchSize: z.int().min(1).max(1000).default(20),
  /** cap on numSignatures per credentials/authorize; never above the credential's multisign */
  maxSignaturesPerAuthorisation: z.int().min(1).optional(),
});

export const jobDefinitionSchema = z.strictObject({
  name,
  cron: z.string().refine((c) => cron.validate(c), 'invalid cron expression'),
  timeZone: timeZone.default('Asia/Tokyo'),
  tenant: name,
  export: z.strictObject({
    /** folder holding the exports, relative to the job file */
    folder: z.string().min(1),
    glob: z.string().min(1).default('*.csv'),
    encoding: z.enum(['auto', 'utf8', 'cp932']).default('auto'),
    columns: z.strictObject({
      invoiceNumber: z.string().min(1),
      customerName: z.string().min(1),
      amount: z.string().min(1),
      pdfPath: z.string().min(1),
      issueDate: z.string().min(1).optional(),
    }),
  }),
  signing: signingProfileSchema,
  /** outbox root, relative to the job file; sealed files go to <outbox>/<tenant>/<run date>/ */
  outbox: z.string().min(1),
});

export type JobDefinitionInput = z.input<typeof jobDefinitionSchema>;
export type JobDefinitionFields = z.output<typeof jobDefinitionSchema>;

/** A validated job definition with its paths resolved against the file it came from. */
export interface JobDefinition extends JobDefinitionFields {
  file: string;
  baseDir: string;
  exportFolder: string;
  outboxRoot: string;
}

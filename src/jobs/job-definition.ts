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

/** How the application authenticates itself to the provider (no person in the loop). */
export const serviceAuthSchema = z.discriminatedUnion('method', [
  /** OAuth2 client credentials at `<oauth2>/oauth2/token`, with signing.clientId and signing.clientSecret */
  z.strictObject({ method: z.literal('client_credentials'), scope: z.string().min(1).optional() }),
  /** CSC `auth/login` with HTTP Basic username and password */
  z.strictObject({ method: z.literal('basic'), username: z.string().min(1), password: secretRefSchema }),
  /** a long-lived bearer token the provider issued, from a secret reference */
  z.strictObject({ method: z.literal('bearer'), token: secretRefSchema }),
]);

/**
 * Who holds the factors that authorise the key (DESIGN.md, "The problem", question 3):
 * - `secret-refs`: PIN and TOTP secret read from signing.pin / signing.totpSecret references;
 * - `provider-held`: the tenant delegated them; kept encrypted (AES-256-GCM) in `vault` under `kek`;
 * - `approval`: the tenant keeps them and approves a quota beforehand, on the provider's page
 *   (`oauth2code`) or at a prompt (`prompt`); the approval is parked in Redis, encrypted under `kek`;
 * - `implicit`: the credential needs no PIN or OTP.
 */
export const custodySchema = z.discriminatedUnion('mode', [
  z.strictObject({ mode: z.literal('secret-refs') }),
  z.strictObject({
    mode: z.literal('provider-held'),
    /** folder of encrypted factor files, relative to the job file */
    vault: z.string().min(1),
    kek: secretRefSchema.default('env:SEALER_KEK'),
  }),
  z.strictObject({
    mode: z.literal('approval'),
    via: z.enum(['oauth2code', 'prompt']),
    kek: secretRefSchema.default('env:SEALER_KEK'),
  }),
  z.strictObject({ mode: z.literal('implicit') }),
]);

/** PAdES baseline levels (ETSI EN 319 142-1): B-B signature only; B-T adds a signature timestamp; B-LT
 * adds the chains' certificates and revocation data in a DSS; B-LTA adds a document timestamp over all. */
export const sealLevelSchema = z.enum(['B-B', 'B-T', 'B-LT', 'B-LTA']);
export type SealLevel = z.infer<typeof sealLevelSchema>;

/** An RFC 3161 time-stamping authority named by the job (instead of the provider's signatures/timestamp). */
export const timestampAuthoritySchema = z.strictObject({
  url: z.url(),
  /** HTTP authentication the TSA wants, secrets by reference */
  auth: z
    .discriminatedUnion('type', [
      z.strictObject({ type: z.literal('basic'), username: z.string().min(1), password: secretRefSchema }),
      z.strictObject({ type: z.literal('bearer'), token: secretRefSchema }),
    ])
    .optional(),
  /** TSA policy to request (TSTInfo.policy must then be it) */
  policyOid: z
    .string()
    .regex(/^[0-2](\.(0|[1-9][0-9]*))+$/, 'a dotted OID such as 1.2.3.4')
    .optional(),
  /** extra CA certificate (PEM) to trust for the TSA's TLS, relative to the job file */
  caFile: z.string().min(1).optional(),
});

/** A visible company seal (角印) on a page; invisible when absent. Coordinates in PDF points. */
export const sealAppearanceSchema = z.strictObject({
  /** 1-based page number */
  page: z.int().min(1).default(1),
  x: z.number().min(0),
  y: z.number().min(0),
  /** side of the square, in points */
  size: z.number().min(18).max(600),
  /** text of the stamp; default the tenant's name */
  text: z.string().min(1).max(40).optional(),
  /** a PNG the tenant supplies instead of drawn text, relative to the job file */
  image: z.string().min(1).optional(),
});

export const signingProfileSchema = z
  .strictObject({
    /** CSC API base URL ending in /csc/v2 (or /csc/v1); when absent, SEALER_PROVIDER_URL (or the demo's sandbox). */
    providerUrl: z.url().optional(),
    /** CSC API version the provider speaks; default: v1 when providerUrl ends in /v1, else v2 */
    apiVersion: z.enum(['v1', 'v2']).optional(),
    /** extra CA certificate (PEM) to trust for the provider's TLS, relative to the job file */
    caFile: z.string().min(1).optional(),
    /** the application's OAuth2 client ID at the provider: needed by serviceAuth client_credentials and
     * by custody approval via oauth2code (the approval page's authorization code flow), by nothing else */
    clientId: z.string().min(1).optional(),
    clientSecret: secretRefSchema.optional(),
    serviceAuth: serviceAuthSchema.default({ method: 'client_credentials' }),
    credentialId: z.string().min(1),
    custody: custodySchema.default({ mode: 'secret-refs' }),
    pin: secretRefSchema.optional(),
    totpSecret: secretRefSchema.optional(),
    /** how the credential's OTP reaches whoever authorises: computed from a TOTP secret, or sent to a
     * person (`sendOTP`: by the provider on request; `oob`: out of band), which only an approval can answer */
    otpDelivery: z.enum(['totp', 'sendOTP', 'oob']).default('totp'),
    /** the TOTP parameters the provider set up the credential with (RFC 6238) */
    totp: z
      .strictObject({
        digits: z.int().min(6).max(8).default(6),
        periodSec: z.int().min(1).max(300).default(30),
        algorithm: z.enum(['SHA1', 'SHA256', 'SHA512']).default('SHA1'),
      })
      .default({ digits: 6, periodSec: 30, algorithm: 'SHA1' }),
    /** how long one request to the provider may take before it is given up (and retried) */
    requestTimeoutSec: z.int().min(1).max(600).default(30),
    /** hashes per signatures/signHash call */
    batchSize: z.int().min(1).max(1000).default(20),
    /** cap on numSignatures per credentials/authorize; never above the credential's multisign */
    maxSignaturesPerAuthorisation: z.int().min(1).optional(),
    /** a SAD this close to its expiry is not used for another batch */
    sadExpiryMarginSec: z.int().min(0).max(3600).default(60),
    /** one authorisation and one signHash call per invoice, for contracts or jurisdictions that do
     * not accept batch sealing */
    oneDocumentPerAuthorisation: z.boolean().default(false),
    /** PAdES level of every seal */
    level: sealLevelSchema.default('B-B'),
    /** RFC 3161 TSA for B-T and above; absent: the provider's signatures/timestamp when its info lists it */
    timestamp: timestampAuthoritySchema.optional(),
    /** root certificates (PEM files, relative to the job file) that the TSA's chain and, for B-LT and
     * above, the signer's chain must end in */
    trustRoots: z.array(z.string().min(1)).min(1).optional(),
    /** timestamp requests in flight at once, per credential */
    timestampConcurrency: z.int().min(1).max(256).default(16),
    /** attempts per timestamp before the invoice fails (then the job's retries take over) */
    timestampAttempts: z.int().min(1).max(10).default(3),
    appearance: sealAppearanceSchema.optional(),
  })
  .superRefine((s, ctx) => {
    const issue = (path: string[], message: string) => ctx.addIssue({ code: 'custom', path, message });
    if (s.serviceAuth.method === 'client_credentials' && s.clientSecret === undefined) {
      issue(['clientSecret'], 'required for serviceAuth client_credentials');
    }
    if (s.clientId === undefined) {
      if (s.serviceAuth.method === 'client_credentials') {
        issue(['clientId'], 'required for serviceAuth client_credentials (the OAuth2 client ID)');
      }
      if (s.custody.mode === 'approval' && s.custody.via === 'oauth2code') {
        issue(
          ['clientId'],
          "required for custody approval via oauth2code (the provider page's authorization code flow)",
        );
      }
    }
    const mode = s.custody.mode;
    if (mode !== 'secret-refs') {
      for (const f of ['pin', 'totpSecret'] as const) {
        if (s[f] !== undefined) issue([f], `not allowed with custody ${mode}: the factors are not kept here`);
      }
    }
    if (s.oneDocumentPerAuthorisation && mode === 'approval') {
      issue(
        ['oneDocumentPerAuthorisation'],
        'an approval covers many documents; one document per authorisation needs factors the worker may use (secret-refs, provider-held or implicit)',
      );
    }
    if (s.level !== 'B-B' && s.trustRoots === undefined) {
      issue(
        ['trustRoots'],
        `required for level ${s.level}: the root certificates the TSA's${s.level === 'B-T' ? '' : " and the signer's"} chain must end in`,
      );
    }
    if (s.level === 'B-B' && s.timestamp !== undefined) {
      issue(['timestamp'], 'a timestamp authority is used from level B-T; set level B-T, B-LT or B-LTA');
    }
    if (s.otpDelivery !== 'totp' && mode !== 'approval') {
      issue(
        ['otpDelivery'],
        `an OTP sent to a person (${s.otpDelivery}) cannot be answered at night; use custody approval`,
      );
    }
  });

const column = z.string().min(1);
const colour = z.string().regex(/^#[0-9A-Fa-f]{6}$/, "a colour as '#RRGGBB'");
const taxCategory = z.enum(['standard', 'reduced', 'exempt']);
const yenRounding = z.enum(['floor', 'round', 'ceil']);

/**
 * A data export (issue 11): one CSV whose record-type column tells header rows from detail rows, or a
 * header CSV and a detail CSV joined by invoice number. Columns are mapped by header name as for PDF
 * exports; the logical fields are the export part's HEADER_FIELDS and DETAIL_FIELDS.
 */
export const dataExportSchema = z.strictObject({
  layout: z.discriminatedUnion('kind', [
    z.strictObject({
      kind: z.literal('record-type'),
      /** the column whose value says what a row is */
      column,
      header: z.string().min(1).default('H'),
      detail: z.string().min(1).default('D'),
    }),
    z.strictObject({
      kind: z.literal('two-files'),
      /** the detail file of a header file: `{name}` is the header file's name without `.csv` */
      details: z
        .string()
        .regex(/\{name\}/, 'a file name containing {name}, e.g. "{name}-lines.csv"')
        // Beside its header file (it moves to the same processed/), and never the header file itself.
        .refine((d) => !/[\\/]/.test(d), 'a file name beside the header file, not a path')
        .refine(
          (d) => d.replace(/\{name\}/g, '').toLowerCase() !== '.csv',
          'must differ from the header file: "{name}.csv" is the header file itself',
        ),
    }),
  ]),
  header: z.strictObject({
    invoiceNumber: column,
    issueDate: column,
    recipientName: column,
    issuerName: column.optional(),
    registrationNumber: column.optional(),
    transactionDate: column.optional(),
    periodFrom: column.optional(),
    periodTo: column.optional(),
    dueDate: column.optional(),
    payee: column.optional(),
    subtotal: column.optional(),
    tax: column.optional(),
    total: column.optional(),
  }),
  detail: z.strictObject({
    /** the join key of the two-files layout; in the record-type layout, the header's column */
    invoiceNumber: column.optional(),
    description: column,
    quantity: column,
    unitPrice: column,
    taxCategory: column,
    transactionDate: column.optional(),
    unit: column.optional(),
  }),
});

/** How a tenant's data-export invoices are computed and drawn (required with export.data). */
export const invoiceProfileSchema = z.strictObject({
  issuer: z.strictObject({
    /** the default when the export has no issuer column (or leaves it empty) */
    name: z.string().min(1).optional(),
    registrationNumber: z.string().min(1).optional(),
    /** a corporation's registration number carries the 法人番号 check digit */
    kind: z.enum(['corporation', 'individual']).default('corporation'),
  }),
  prices: z.enum(['excluding', 'including']).default('excluding'),
  taxRounding: yenRounding.default('floor'),
  lineRounding: yenRounding.default('floor'),
  /** the export's tax category cells → category; replaces the default values */
  taxCategoryValues: z.record(z.string().min(1), taxCategory).optional(),
  template: z
    .strictObject({
      /** a PNG or JPEG, relative to the job file */
      logo: z.string().min(1).optional(),
      accentColour: colour.optional(),
      textColour: colour.optional(),
      addressBlock: z.array(z.string().min(1).max(120)).max(6).optional(),
      footer: z.string().min(1).max(200).optional(),
      title: z.string().min(1).max(20).optional(),
    })
    .default({}),
});

export const jobDefinitionSchema = z
  .strictObject({
    name,
    cron: z.string().refine((c) => cron.validate(c), 'invalid cron expression'),
    timeZone: timeZone.default('Asia/Tokyo'),
    tenant: name,
    export: z.strictObject({
      /** folder holding the exports, relative to the job file */
      folder: z.string().min(1),
      glob: z.string().min(1).default('*.csv'),
      encoding: z.enum(['auto', 'utf8', 'cp932']).default('auto'),
      /** when an export is complete and may be taken: `{ quietSec }` unchanged (mtime) for that long before
       * the run, or `{ marker }` a file of the export's name plus this suffix beside it (`invoices.csv.done`) */
      ready: z
        .union([
          z.strictObject({ quietSec: z.int().min(0).max(86_400) }),
          z.strictObject({
            marker: z
              .string()
              .regex(
                /^\.[A-Za-z0-9][A-Za-z0-9._-]{0,31}$/,
                'a suffix such as ".done" (a dot, then letters or digits)',
              ),
          }),
        ])
        .default({ quietSec: 60 }),
      /** a PDF export: which column holds what (one row per invoice, each naming its PDF) */
      columns: z
        .strictObject({
          invoiceNumber: z.string().min(1),
          customerName: z.string().min(1),
          amount: z.string().min(1),
          pdfPath: z.string().min(1),
          issueDate: z.string().min(1).optional(),
        })
        .optional(),
      /** a data export instead: header and detail rows that are rendered as qualified invoices */
      data: dataExportSchema.optional(),
    }),
    signing: signingProfileSchema,
    /** outbox root, relative to the job file; sealed files go to <outbox>/<tenant>/<run date>/ */
    outbox: z.string().min(1),
    /** archive renewal of this tenant's delivered files (`sealer schedule` runs it on its own cron) */
    renew: z
      .strictObject({
        cron: z.string().refine((c) => cron.validate(c), 'invalid cron expression'),
        /** renew when the newest document timestamp's TSA certificate expires within this (365d, 90d, 12h) */
        within: z
          .string()
          .regex(/^\d+[dhm]$/, 'a number followed by d, h or m, e.g. 365d')
          .default('365d'),
      })
      .optional(),
    invoice: invoiceProfileSchema.optional(),
  })
  .superRefine((job, ctx) => {
    const issue = (path: (string | number)[], message: string) =>
      ctx.addIssue({ code: 'custom', path, message });
    const { columns, data } = job.export;
    if (columns === undefined && data === undefined) {
      issue(
        ['export', 'columns'],
        'required: the columns of a PDF export (or export.data for a data export)',
      );
    }
    if (columns !== undefined && data !== undefined) {
      issue(['export', 'data'], 'an export is either PDF rows (columns) or invoice data (data), not both');
    }
    if (data !== undefined && job.invoice === undefined) {
      issue(['invoice'], 'required with export.data: the issuer and how the invoices are computed and drawn');
    }
    if (data === undefined && job.invoice !== undefined) {
      issue(['invoice'], 'only used with export.data (a data export)');
    }
    if (data?.layout.kind === 'two-files' && data.detail.invoiceNumber === undefined) {
      issue(
        ['export', 'data', 'detail', 'invoiceNumber'],
        'required with layout two-files: the join key of the detail file',
      );
    }
    if (data !== undefined && job.invoice !== undefined) {
      if (data.header.issuerName === undefined && job.invoice.issuer.name === undefined) {
        issue(['invoice', 'issuer', 'name'], 'required when the export has no issuerName column');
      }
      if (
        data.header.registrationNumber === undefined &&
        job.invoice.issuer.registrationNumber === undefined
      ) {
        issue(
          ['invoice', 'issuer', 'registrationNumber'],
          'required when the export has no registrationNumber column',
        );
      }
    }
  });

export type JobDefinitionInput = z.input<typeof jobDefinitionSchema>;
export type JobDefinitionFields = z.output<typeof jobDefinitionSchema>;

/** A validated job definition with its paths resolved against the file it came from. */
export interface JobDefinition extends JobDefinitionFields {
  file: string;
  baseDir: string;
  exportFolder: string;
  outboxRoot: string;
  /** custody provider-held: the vault folder, resolved */
  factorVaultDir?: string;
  /** signing.caFile, resolved */
  caFilePath?: string;
  /** signing.trustRoots, resolved */
  trustRootPaths?: string[];
  /** signing.timestamp.caFile, resolved */
  timestampCaFilePath?: string;
  /** signing.appearance.image, resolved */
  appearanceImagePath?: string;
  /** invoice.template.logo, resolved */
  invoiceLogoPath?: string;
  /** signing.apiVersion, or what signing.providerUrl says (a job that leaves the URL to
   * SEALER_PROVIDER_URL gets its version from that URL when the client is made: apiVersionOf) */
  apiVersion: 'v1' | 'v2';
}

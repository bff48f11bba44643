// The pdf part's one error type: every failure to prepare, embed, read or render a PDF. Messages name
// the step and the offending field or offset; causes (pdf-lib parse errors, etc.) stay chained.
import { SealerError } from '../common/errors';

export class PdfError extends SealerError {}

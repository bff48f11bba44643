// Base class for this product's errors: every part has its own subclass (ExportError, CscError,
// SealError, ...) with a message naming the file, line, invoice or field, and the cause chained.
export class SealerError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

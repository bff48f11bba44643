// The one rule for an invoice number that becomes a file name (<invoice>.pdf in the outbox, an entry
// in the sealed index): the reader rejects a row by it, and the outbox may check the same rule again.
export const INVOICE_NUMBER_MAX_LENGTH = 64;

/**
 * Windows device names, reserved in any case and also before a dot and anything (`con.2024`):
 * Microsoft's "Naming Files, Paths, and Namespaces" lists CON, PRN, AUX, NUL, COM0-9 and LPT0-9.
 * A share the finance team opens from Windows cannot hold such a file.
 */
const WINDOWS_DEVICE = /^(?:CON|PRN|AUX|NUL|COM[0-9]|LPT[0-9])(?:\.|$)/i;

function quote(value: string): string {
  return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
}

/**
 * Why `s` cannot be an invoice number, or undefined if it can. Safe means: 1 to 64 of [A-Za-z0-9._-],
 * starting with a letter or digit (no hidden `.x`, no `-x` that a tool reads as an option), not ending
 * in a dot (Windows drops it), and not a Windows device name.
 */
export function invoiceNumberProblem(s: string): string | undefined {
  if (s.length === 0) return 'is empty';
  if (s.length > INVOICE_NUMBER_MAX_LENGTH) return `is longer than ${INVOICE_NUMBER_MAX_LENGTH} characters`;
  if (/[. ]$/.test(s)) return `${quote(s)} ends in a dot or a space (Windows drops it from a file name)`;
  if (!/^[A-Za-z0-9._-]+$/.test(s)) {
    return `${quote(s)} may hold only letters, digits, "-", "_" and "." (it becomes a file name)`;
  }
  if (!/^[A-Za-z0-9]/.test(s))
    return `${quote(s)} must start with a letter or a digit (it becomes a file name)`;
  if (WINDOWS_DEVICE.test(s)) return `${quote(s)} is a reserved Windows device name (it becomes a file name)`;
  return undefined;
}

/** The key under which invoice numbers that differ only in letter case collide (case-insensitive shares). */
export function invoiceNumberFold(s: string): string {
  return s.toLowerCase();
}

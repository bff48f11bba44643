// What a CSV cell for finance may start with. Excel (and LibreOffice, Google Sheets) runs a cell that
// starts with = + - @ TAB or CR as a formula, so a customer named `=HYPERLINK(...)` in a core-system
// export would become a live link in finance's spreadsheet (OWASP "CSV Injection"). Every CSV the
// product writes for people passes each cell through excelSafe, and every reader of those files
// through excelRead, which undoes it exactly.

// Apostrophes first: a value that already starts with "'" before a trigger gets one more, so that
// excelRead can strip exactly one and give back the value as it was (`'=x` → `''=x` → `'=x`).
const FORMULA_START = /^'*[=+\-@\t\r]/;

// A plain whole number (a credit note's -5000) is a number to Excel, not a formula: kept as it is,
// so amounts stay numeric in the sheet.
const PLAIN_INTEGER = /^-?\d+$/;

/** The cell as written: a leading `'` when Excel would read the value as a formula. */
export function excelSafe(value: string): string {
  return FORMULA_START.test(value) && !PLAIN_INTEGER.test(value) ? `'${value}` : value;
}

/** The value of a cell written by excelSafe. */
export function excelRead(cell: string): string {
  return cell.startsWith("'") && FORMULA_START.test(cell.slice(1)) ? cell.slice(1) : cell;
}

// What the qualified-invoice renderer draws: an invoice whose figures are already computed (the export
// part validates the data and computes the tax), and the tenant's template. Plain data, so that it
// crosses into the prepare threads as a structured clone.

export interface InvoiceDocumentLine {
  description: string;
  /** as exported ("3", "1.5") */
  quantity: string;
  unit?: string;
  /** yen as exported ("1200", "12.5"; negative for a discount) */
  unitPrice: string;
  /** the line's amount, whole yen, in the basis of the prices */
  amount: number;
  /** 'reduced' lines are marked (※) and a note says they are at the reduced rate */
  taxCategory: 'standard' | 'reduced' | 'exempt';
  /** YYYY-MM-DD */
  transactionDate?: string;
}

export interface InvoiceDocumentRate {
  category: 'standard' | 'reduced' | 'exempt';
  ratePercent: number;
  /** consumption tax excluded, whole yen */
  taxable: number;
  tax: number;
  total: number;
}

export interface InvoiceDocument {
  invoiceNumber: string;
  /** YYYY-MM-DD; also the PDF's CreationDate and ModDate (00:00 JST), so output depends on data only */
  issueDate: string;
  dueDate?: string;
  transactionDate?: string;
  transactionPeriod?: { from: string; to: string };
  issuer: {
    name: string;
    /** T followed by 13 digits */
    registrationNumber: string;
  };
  recipientName: string;
  /** whether the line amounts include consumption tax (税込) or not (税抜) */
  prices: 'excluding' | 'including';
  lines: InvoiceDocumentLine[];
  /** the rates present, standard, reduced, exempt */
  rates: InvoiceDocumentRate[];
  subtotal: number;
  tax: number;
  total: number;
  /** payee bank details, one line */
  payee?: string;
}

/** A tenant's look (from the job's profile). Colours are '#RRGGBB'. */
export interface InvoiceTemplate {
  /** PNG or JPEG bytes, drawn top left within 40 mm × 15 mm */
  logo?: Uint8Array;
  /** headings, rules and the table header. Default '#1f3a5f' */
  accentColour?: string;
  /** body text. Default '#000000' */
  textColour?: string;
  /** the issuer's address block, a line each (address, telephone, e-mail) */
  addressBlock?: string[];
  /** footer text on every page */
  footer?: string;
  /** Default '請求書' */
  title?: string;
}

// The two values that cross the seal part's boundary. Both are small and structured-clone safe: they
// carry the bytes of the incremental update only, never the whole document, so a thread hop or a
// worker's memory costs the size of an update (a few KB), not of the invoice.

/** What `prepare` returns: an update with an empty placeholder, and what the provider must sign. */
export interface PreparedSeal {
  /** Bytes of the input this update follows; the sealed file is input || update. */
  inputLength: number;
  /** One incremental update carrying the signature field and the still empty /Contents. */
  update: Uint8Array;
  /** Relative to input || update: [0, start of the /Contents hex string, its end, rest of file]. */
  byteRange: [number, number, number, number];
  /** SHA-256 of the signed byte ranges, taken over the real input bytes in the prepare step. */
  contentDigest: Uint8Array;
  /** Bytes the placeholder holds (the CMS may take fewer; the rest stays zero). */
  signatureBytes: number;
  /** DER of the CAdES signed attributes (messageDigest = contentDigest). */
  signedAttributes: Uint8Array;
  /** SHA-256 of the signed attributes: the hash the provider seals (signatures/signHash). */
  hashToSign: Uint8Array;
}

/** What `finish` returns: everything written after the input, the CMS embedded and verified. */
export interface SealedUpdate {
  inputLength: number;
  /** The seal's update, then (B-LT, B-LTA) the DSS and document-timestamp updates. */
  update: Buffer;
  cms: Buffer;
}

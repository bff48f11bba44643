// qpdf as an outside reader of PDF structure: `qpdf --json` of the newest revision with every stream
// decoded, and the few lookups LTV tests need (catalog, DSS arrays as bytes, signature fields).
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
interface QpdfObject {
  value?: Json;
  stream?: { dict: Record<string, Json>; data?: string };
}

export interface QpdfView {
  objects: Record<string, QpdfObject>;
  catalog: Record<string, Json>;
  /** Resolves "N 0 R" strings to the object's value (dictionaries, arrays); others pass through. */
  resolve(value: Json | undefined): Json | undefined;
  /** A stream's decoded bytes, by reference "N 0 R". */
  streamBytes(ref: string): Buffer;
  /** The DSS as qpdf reads it: each array's streams decoded, VRI keys, and each VRI's references. */
  dss():
    | {
        certs: Buffer[];
        ocsps: Buffer[];
        crls: Buffer[];
        refs: Record<'certs' | 'ocsps' | 'crls', string[]>;
        vri: Record<string, Record<string, Json>>;
      }
    | undefined;
  /** Every dictionary with /Type /Sig or /DocTimeStamp, and the field names (/T) that point to them. */
  signatureFields(): SignatureField[];
}

export interface SignatureField {
  name: string;
  type: string;
  subFilter: string;
  /** /Contents as qpdf decodes the string, in hex, padding included. */
  contentsHex: string;
  byteRange: number[];
  /** Whether the signature dictionary has an /M entry. */
  hasM: boolean;
}

const REF = /^\d+ \d+ R$/;

export function qpdfJson(pdf: Buffer, dir: string, name: string): QpdfView {
  const file = join(dir, `${name}.pdf`);
  writeFileSync(file, pdf);
  const out = execFileSync(
    'qpdf',
    ['--json=2', '--json-key=qpdf', '--json-stream-data=inline', '--decode-level=generalized', file],
    { maxBuffer: 256 * 1024 * 1024 },
  ).toString();
  const objects = (JSON.parse(out) as { qpdf: [unknown, Record<string, QpdfObject>] }).qpdf[1];
  const resolve = (value: Json | undefined): Json | undefined =>
    typeof value === 'string' && REF.test(value) ? objects[`obj:${value}`]?.value : value;
  const trailer = objects.trailer!.value as Record<string, Json>;
  const catalog = resolve(trailer['/Root']) as Record<string, Json>;
  const streamBytes = (ref: string) => {
    const s = objects[`obj:${ref}`]?.stream;
    if (!s?.data) throw new Error(`${ref} is not a stream qpdf could decode`);
    return Buffer.from(s.data, 'base64');
  };
  return {
    objects,
    catalog,
    resolve,
    streamBytes,
    dss() {
      const dss = resolve(catalog['/DSS']) as Record<string, Json> | undefined;
      if (!dss) return undefined;
      const refs = (key: string) => ((resolve(dss[key]) as string[] | undefined) ?? []).slice();
      const vriDict = (resolve(dss['/VRI']) as Record<string, Json> | undefined) ?? {};
      const vri: Record<string, Record<string, Json>> = {};
      for (const [k, v] of Object.entries(vriDict)) vri[k.slice(1)] = resolve(v) as Record<string, Json>;
      const r = { certs: refs('/Certs'), ocsps: refs('/OCSPs'), crls: refs('/CRLs') };
      return {
        certs: r.certs.map(streamBytes),
        ocsps: r.ocsps.map(streamBytes),
        crls: r.crls.map(streamBytes),
        refs: r,
        vri,
      };
    },
    signatureFields() {
      const fields: SignatureField[] = [];
      for (const o of Object.values(objects)) {
        const v = o.value as Record<string, Json> | undefined;
        if (!v || typeof v !== 'object' || Array.isArray(v) || v['/FT'] !== '/Sig') continue;
        const sig = resolve(v['/V']) as Record<string, Json>;
        fields.push({
          name: String(v['/T']).replace(/^u:/, ''),
          type: String(sig['/Type']),
          subFilter: String(sig['/SubFilter']),
          contentsHex: String(sig['/Contents']).replace(/^b:/, ''),
          byteRange: sig['/ByteRange'] as number[],
          hasM: '/M' in sig,
        });
      }
      return fields.sort((a, b) => a.name.localeCompare(b.name));
    },
  };
}

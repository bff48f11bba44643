// Reads what the signature-timestamp check needs from a CMS SignedData's single SignerInfo: the
// signature value (what id-aa-signatureTimeStampToken stamps) and the tokens among its unsigned
// attributes. A DER walk like verify-cms's, so a B-B file pays nothing for pkijs parsing.
import { bytesOf, contentOf, decodeOid, readChildren, readTlv, TAG } from './der';

export const OID_SIGNATURE_TIMESTAMP_TOKEN = '1.2.840.113549.1.9.16.2.14';

export interface SignerInfoParts {
  signatureValue: Buffer;
  /** Each a ContentInfo (TimeStampToken) DER, in the order found. */
  signatureTimestampTokens: Buffer[];
}

export function readSignerInfoParts(cmsDer: Buffer): SignerInfoParts {
  const cms = Buffer.from(cmsDer.buffer, cmsDer.byteOffset, cmsDer.byteLength);
  const contentInfo = readTlv(cms, 0);
  const [, ciContent] = readChildren(cms, contentInfo);
  if (!ciContent || ciContent.tag !== TAG.CONTEXT_0) throw new Error('ContentInfo has no [0] content');
  const sd = readChildren(cms, readChildren(cms, ciContent)[0]!);
  const signerInfos = sd[sd.length - 1];
  if (!signerInfos || signerInfos.tag !== TAG.SET) throw new Error('SignedData has no signerInfos SET');
  const first = readChildren(cms, signerInfos)[0];
  if (!first) throw new Error('SignedData has no SignerInfo');
  const si = readChildren(cms, first);
  let k = 3;
  if (si[k]?.tag === TAG.CONTEXT_0) k++; // signed attributes
  k++; // signature algorithm
  const signature = si[k++];
  if (!signature || signature.tag !== TAG.OCTET_STRING) throw new Error('SignerInfo has no signature');
  const tokens: Buffer[] = [];
  const unsigned = si[k];
  if (unsigned?.tag === TAG.CONTEXT_1) {
    for (const attr of readChildren(cms, unsigned)) {
      const [type, values] = readChildren(cms, attr);
      if (!type || type.tag !== TAG.OID || !values) continue;
      if (decodeOid(contentOf(cms, type)) !== OID_SIGNATURE_TIMESTAMP_TOKEN) continue;
      for (const v of readChildren(cms, values)) tokens.push(Buffer.from(bytesOf(cms, v)));
    }
  }
  return { signatureValue: Buffer.from(contentOf(cms, signature)), signatureTimestampTokens: tokens };
}

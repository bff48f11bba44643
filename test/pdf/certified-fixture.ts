// Certified inputs for the DocMDP/FieldMDP tests: a sample invoice certified by a test signer, as an
// authoring tool would write it (ISO 32000-1 §12.8.2.2): a signature whose /Reference holds a DocMDP
// SigRef, the catalog's /Perms /DocMDP pointing at it, and optionally empty signature fields (with a
// /Lock) and a FieldMDP lock on the certification itself. Written through prepare's own update writer.
import { PDFArray, PDFDict, PDFName, PDFNumber, PDFString, type PDFObject } from 'pdf-lib';
import { CmsTemplate, digestToSign } from '../../src/pades';
import { embedCms } from '../../src/pdf';
import { catalogRef, type MdpPermission } from '../../src/pdf/modification-permissions';
import { appendSignatureUpdate } from '../../src/pdf/prepare';
import {
  createSignatureDictionary,
  SIG_FLAGS_APPEND_ONLY,
  SIG_FLAGS_SIGNATURES_EXIST,
} from '../../src/pdf/signature-field';
import type { TestSigner } from '../helpers/test-pki';

export interface LockSpec {
  action: 'All' | 'Include' | 'Exclude';
  fields?: string[];
  p?: MdpPermission;
}

export interface CertifyOptions {
  signer: TestSigner;
  signingTime: Date;
  /** The DocMDP /P; undefined writes TransformParams without /P (which means 2). */
  p: MdpPermission | undefined;
  /** Empty signature fields left for later signers, each optionally with a /Lock. */
  emptyFields?: { name: string; lock?: LockSpec }[];
  /** A FieldMDP SigRef on the certification signature as well. */
  certificationLock?: LockSpec;
}

function names(fields: string[] | undefined): PDFString[] {
  return (fields ?? []).map((f) => PDFString.of(f));
}

export async function certifiedPdf(input: Buffer, options: CertifyOptions): Promise<Buffer> {
  const prepared = await appendSignatureUpdate(input, { signingTime: options.signingTime }, (doc, field) => {
    const { context } = doc;
    const page = doc.getPage(0);
    let acroForm = doc.catalog.lookupMaybe(PDFName.of('AcroForm'), PDFDict);
    if (!acroForm) {
      acroForm = context.obj({ Fields: [] });
      doc.catalog.set(PDFName.of('AcroForm'), context.register(acroForm));
    }
    const fields = acroForm.lookup(PDFName.of('Fields'), PDFArray);
    let annots = page.node.lookupMaybe(PDFName.of('Annots'), PDFArray);
    if (!annots) {
      annots = context.obj([]);
      page.node.set(PDFName.of('Annots'), annots);
    }
    const addWidget = (name: string, extra: Record<string, PDFObject>) => {
      const ref = context.register(
        context.obj({
          Type: 'Annot',
          Subtype: 'Widget',
          FT: 'Sig',
          Rect: [0, 0, 0, 0],
          F: 132,
          T: PDFString.of(name),
          P: page.ref,
          ...extra,
        }),
      );
      fields.push(ref);
      annots.push(ref);
    };

    for (const empty of options.emptyFields ?? []) {
      const extra: Record<string, PDFObject> = {};
      if (empty.lock) {
        const lock: Record<string, PDFObject> = {
          Type: PDFName.of('SigFieldLock'),
          Action: PDFName.of(empty.lock.action),
        };
        if (empty.lock.fields) lock.Fields = context.obj(names(empty.lock.fields));
        if (empty.lock.p !== undefined) lock.P = PDFNumber.of(empty.lock.p);
        extra.Lock = context.register(context.obj(lock));
      }
      addWidget(empty.name, extra);
    }

    const docMdpParams: Record<string, PDFObject> = {
      Type: PDFName.of('TransformParams'),
      V: PDFName.of('1.2'),
    };
    if (options.p !== undefined) docMdpParams.P = PDFNumber.of(options.p);
    const references: PDFObject[] = [
      context.obj({
        Type: PDFName.of('SigRef'),
        TransformMethod: PDFName.of('DocMDP'),
        TransformParams: context.obj(docMdpParams),
      }),
    ];
    if (options.certificationLock) {
      references.push(
        context.obj({
          Type: PDFName.of('SigRef'),
          TransformMethod: PDFName.of('FieldMDP'),
          Data: catalogRef(doc),
          TransformParams: context.obj({
            Type: PDFName.of('TransformParams'),
            Action: PDFName.of(options.certificationLock.action),
            Fields: context.obj(names(options.certificationLock.fields)),
            V: PDFName.of('1.2'),
          }),
        }),
      );
    }
    const sig = createSignatureDictionary(context, field, { Reference: context.obj(references) });
    addWidget('Certification', { V: sig.ref });
    doc.catalog.set(PDFName.of('Perms'), context.obj({ DocMDP: sig.ref }));
    acroForm.set(PDFName.of('SigFlags'), PDFNumber.of(SIG_FLAGS_SIGNATURES_EXIST | SIG_FLAGS_APPEND_ONLY));
    return { dictBytes: sig.dictBytes, fieldName: 'Certification', filledExistingField: false };
  });

  const template = CmsTemplate.fromCertificates(options.signer.chainDer);
  const attrs = template.signedAttributes(prepared.contentDigest);
  return embedCms(prepared, template.assemble(attrs, options.signer.signDigest(digestToSign(attrs))));
}

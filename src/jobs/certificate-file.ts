// PEM certificate files a job definition names (signing.caFile, signing.trustRoots,
// signing.timestamp.caFile): read and checked before any connection, so a bad file is named by its
// field rather than surfacing as a TLS or validation failure at night. Shared by the worker and the
// approval flows, which both reach the provider.
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { JobConfigError } from './job-config-error';
import type { JobDefinition } from './job-definition';

/** signing.caFile's certificates (PEM), checked here so a bad file is named before any connection. */
export async function providerCaOf(job: JobDefinition): Promise<string | undefined> {
  return pemFileOf(job, job.caFilePath, 'signing.caFile');
}

/** The PEM blocks of every certificate in `pem`, in order. */
export function pemBlocks(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/** A PEM file of certificates, read and checked so a bad file is named before any connection. */
export async function pemFileOf(
  job: JobDefinition,
  file: string | undefined,
  field: string,
): Promise<string | undefined> {
  if (file === undefined) return undefined;
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (err) {
    throw new JobConfigError(`job ${job.name}: ${field}: cannot read ${file}`, { cause: err });
  }
  const blocks = pemBlocks(pem);
  if (blocks.length === 0) {
    throw new JobConfigError(`job ${job.name}: ${field} ${file} holds no PEM certificate`);
  }
  for (const block of blocks) {
    try {
      new X509Certificate(block);
    } catch (err) {
      throw new JobConfigError(`job ${job.name}: ${field} ${file} holds an unreadable certificate`, {
        cause: err,
      });
    }
  }
  return pem;
}

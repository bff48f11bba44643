// The service authentication a job's provider profile names, with its secret resolved: what lets this
// application call the provider at all, before any credential is authorised. Shared by the worker's
// signing contexts and the approval flows; the secret is kept by the CSC client, never logged.
import type { CscServiceAuth } from '../csc';
import { JobConfigError, resolveSecret, type JobDefinition } from '../jobs';

/** The job's service authentication with its secret resolved (kept by the client, never logged). */
export async function serviceAuthOf(job: JobDefinition, env: NodeJS.ProcessEnv): Promise<CscServiceAuth> {
  const auth = job.signing.serviceAuth;
  switch (auth.method) {
    case 'client_credentials': {
      // The schema demands it; checked again so a hand-built definition fails clearly, not with "env:".
      const ref = job.signing.clientSecret;
      if (ref === undefined) {
        throw new JobConfigError(`job ${job.name}: signing.clientSecret is required for client_credentials`);
      }
      const clientId = job.signing.clientId;
      if (clientId === undefined) {
        throw new JobConfigError(`job ${job.name}: signing.clientId is required for client_credentials`);
      }
      return {
        kind: 'client_credentials',
        clientId,
        clientSecret: await resolveSecret(ref, job.baseDir, env),
        scope: auth.scope,
      };
    }
    case 'basic':
      return {
        kind: 'basic',
        username: auth.username,
        password: await resolveSecret(auth.password, job.baseDir, env),
      };
    case 'bearer':
      return { kind: 'bearer', token: await resolveSecret(auth.token, job.baseDir, env) };
  }
}

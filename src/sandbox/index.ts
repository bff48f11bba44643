// Public face of the local CSC sandbox (a stand-in remote e-seal provider with its own test CA).
// Other parts import only from here; the worker itself talks to it over HTTP like any provider.
export { startSandbox } from './server';
export { SandboxError } from './sandbox-error';
export { currentOtp, type CurrentOtp } from './current-otp';
export { revokeCredentialInDataDir } from './pki-material';
export { REVOCATION_REASONS } from './revocation-store';
export { TSA_POLICY_OID } from './tsa';
export { loadFaultsArgument, parseFaultPlan, parseFaultSpec } from './fault-spec';
export type {
  FaultEndpoint,
  FaultPlan,
  FaultRule,
  FaultState,
  RevocationReason,
  SandboxCredential,
  SandboxFaults,
  SandboxHandle,
  SandboxOptions,
  SandboxStats,
} from './types';

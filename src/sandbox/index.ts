// Public face of the local CSC sandbox (a stand-in remote e-seal provider with its own test CA).
// Other parts import only from here; the worker itself talks to it over HTTP like any provider.
export { startSandbox } from './server';
export { SandboxError } from './sandbox-error';
export { loadFaultsArgument, parseFaultPlan, parseFaultSpec } from './fault-spec';
export type {
  FaultEndpoint,
  FaultPlan,
  FaultRule,
  FaultState,
  SandboxCredential,
  SandboxFaults,
  SandboxHandle,
  SandboxOptions,
  SandboxStats,
} from './types';

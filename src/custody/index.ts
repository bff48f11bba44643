// Public face of the custody part's cross-process pieces: the Redis AuthorisationGuard (lease, TOTP
// steps, latch) that the queue wires into each SAD manager, and the functions ops' commands call to
// see and clear latches.
export { CustodyError } from './custody-error';
export { type CredentialRef } from './credential-keys';
export {
  clearCredentialLatch,
  listCredentialLatches,
  readLatch,
  type StoredLatch,
} from './credential-latches';
export {
  RedisAuthorisationGuard,
  RedisAuthorisationGuards,
  type RedisAuthorisationGuardOptions,
} from './redis-authorisation-guard';

export * from './seal-job';
export * from './seal-queue';
export * from './producer';
export * from './scheduler';
export * from './seal-worker';
export * from './run-record';
export * from './run-night';
export * from './approve';
export { SigningContexts } from './signing-contexts';

export * from './outbox';
export * from './manifest';

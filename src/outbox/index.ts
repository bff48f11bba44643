export * from './outbox';
export * from './manifest';
export * from './sealed-index';

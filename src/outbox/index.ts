export * from './outbox';
export * from './manifest';
export * from './sealed-index';
export * from './run-report';
// the per-tenant audit trail
export * from './audit-entry';
export { auditDir, listAuditFiles, readAuditHead, type AuditHead } from './audit-files';
export * from './audit-log';
export * from './audit-verify';
export * from './delivery';
export { fsyncDir } from './atomic-write';

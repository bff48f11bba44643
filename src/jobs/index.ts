export * from './job-definition';
export * from './load-jobs';
export * from './secret-ref';
export * from './job-config-error';
export * from './certificate-file';

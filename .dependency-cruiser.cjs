// The layer rules of ../shared/DESIGN.md ("Parts"), checked by `npm run -s deps` (part of `npm test`):
// dependencies point down the flow, the sandbox never reaches the worker, and no module cycles.
const LOWER = '^src/(common|pdf|pades|csc|seal|outbox|export|jobs|custody|archive)/';

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A cycle makes load order matter and parts inseparable.',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'lower-parts-never-import-upper',
      severity: 'error',
      comment:
        'pdf, pades, csc, seal, outbox, export, jobs, custody, archive and common never import queue, ops, cli or demo.',
      from: { path: LOWER },
      to: { path: '^src/(queue|ops|cli|demo)/' },
    },
    {
      name: 'sandbox-only-from-cli-and-demo',
      severity: 'error',
      comment:
        'The worker talks to a provider only through the CSC protocol: nothing but cli and demo imports the sandbox.',
      from: { path: '^src/', pathNot: '^src/(sandbox|cli|demo)/' },
      to: { path: '^src/sandbox/' },
    },
    {
      name: 'custody-above-csc-and-config',
      severity: 'error',
      comment:
        'custody uses csc, jobs and outbox, never the other way: csc takes approvals through its own seam (ApprovalSource), config names the vault but holds no custody logic.',
      from: { path: '^src/(common|pdf|pades|csc|seal|outbox|export|jobs|archive)/' },
      to: { path: '^src/custody/' },
    },
    {
      name: 'common-imports-no-part',
      severity: 'error',
      comment: 'common holds what every part shares; it depends on none of them.',
      from: { path: '^src/common/' },
      to: { path: '^src/', pathNot: '^src/common/' },
    },
    {
      name: 'pdf-pades-csc-stay-apart',
      severity: 'error',
      comment: 'pdf never talks HTTP (csc) nor knows CMS (pades); csc never knows PDFs or CMS.',
      from: { path: '^src/(pdf|csc)/' },
      to: { path: '^src/(pades|seal|outbox|export)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '^(dist|node_modules)/' },
  },
};

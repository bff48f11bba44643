// The benchmark's options and figures (what it prints and writes to --json), apart from the bench so
// that the report module and tests can use them without loading the sealing path.
import type { BenchLevel } from './bench-levels';
import type { Summary } from './bench-figures';
import type { ProviderCallCounts, STAGE_NAMES } from './bench-worker';

export type BenchKey = 'ec' | 'rsa';

export interface BenchOptions {
  invoices: number;
  /** jobs in hand per worker process */
  concurrency: number;
  /** jobs per worker process that may wait for their signature beyond `concurrency`; default the worker's */
  awaitingSignature?: number;
  batchSize: number;
  /** provider latency added to every CSC call (the sandbox's `csc:latency` fault), ms; default 0 */
  latencyMs: number;
  /** PAdES levels to seal at, one night each (timestamps from the sandbox's signatures/timestamp) */
  levels?: readonly BenchLevel[];
  /** sandbox TSA latency per timestamp (ms) */
  tsaLatencyMs?: number;
  /** the sandbox's TOTP step and the job's (s); default 30, the sandbox's real step */
  totpPeriodSec?: number;
  /** key of the bench credential (multisign 100,000); default rsa */
  key?: BenchKey;
  /** any sandbox credential ID instead of the bench one (e.g. sakura-eseal-rsa, multisign 500) */
  credential?: string;
  /** worker processes; default 1 */
  workers?: number;
  /** invoices sealed the naive way, after the worker's nights; 0 skips it. Default 3. */
  naive?: number;
  /** write every figure as JSON here */
  json?: string;
  /** keep the work folder (exports, outboxes, sandbox, logs) here instead of a removed temp folder */
  workDir?: string;
  /** check every sealed file with the product's verifier against the sandbox root, after timing */
  verify?: boolean;
  /**
   * `pdf` (default): an export of invoice PDFs; `data`: a data export (header and detail rows) whose
   * invoices are rendered as qualified invoices in the prepare threads, then sealed.
   */
  input?: BenchInput;
  /** where lines go; default stdout */
  out?: (line: string) => void;
}

/** A sandbox credential as the sandbox announces it on start. */
export interface SandboxCredentialLine {
  tenant: string;
  clientId: string;
  credentialId: string;
  keyType: string;
  multisign: number;
  secretsDir: string;
}

export type BenchInput = 'pdf' | 'data';

export interface NightFigures extends ProviderCallCounts {
  name: string;
  mode: 'worker' | 'naive';
  level: BenchLevel;
  workers: number;
  concurrency: number;
  awaitingSignature: number;
  batchSize: number;
  invoices: number;
  sealed: number;
  failed: number;
  seconds: number;
  rate: number;
  /** CPU time during the night, ms: this process (producer, run polling), worker processes, sandbox,
   * Redis (the whole server's) */
  cpuMs: { bench: number; workers: number; sandbox?: number; redis?: number };
  /** bytes a sealed file has beyond its input PDF (PDF input only; 0 for data input) */
  bytesAddedPerInvoice: number;
  /** the run's date: its outbox folder's name */
  runDate: string;
  /** what the night sealed: invoice PDFs, or invoice data rendered first */
  input: BenchInput;
  /** mean size of a sealed file */
  sealedBytesPerInvoice: number;
  /** wall ms per sealed invoice in each step */
  stages: Record<(typeof STAGE_NAMES)[number], Summary>;
  /** successful signHash call durations, ms, and hashes per call */
  batchMs: Summary;
  hashesPerCall: number;
  /** KB */
  /** workersSealing: each worker's peak once 95 % of the night had settled (before the run's report) */
  maxRssKb: { bench: number; workers: number[]; workersSealing?: number[]; sandbox?: number };
  redisMemory: { baselineBytes: number; peakBytes: number; lifetimePeakBytes?: number };
  ceiling: { multisign: number; totpPeriodSec: number; invoicesPerSec: number; percent: number };
  verified?: { valid: number; files: number; problems: string[] };
}

export interface BenchFigures {
  startedAt: string;
  cores: number;
  loadAverage: number[];
  options: Omit<BenchOptions, 'out'>;
  credential: SandboxCredentialLine;
  nights: NightFigures[];
  naive?: NightFigures;
  floor: { seconds: number; rate: number; cpuMsPerInvoice: number };
}

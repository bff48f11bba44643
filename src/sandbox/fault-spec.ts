// Fault plans from the outside world: the compact spec string of `sealer sandbox --faults` (e.g.
// `seed=7,signHash:503:2s=0.1,csc:latency:50-200ms,authorize:sad-expiry:3uses=0.5`), a JSON plan
// (`{"seed": 7, "rules": [...]}`, inline, in a .json file or POSTed to /sandbox/faults), validated with
// zod and normalised into FaultRule values. Every refusal names the item or rule and the field.
import fs from 'node:fs/promises';
import { z } from 'zod';
import { SandboxError } from './sandbox-error';
import type { FaultEndpoint, FaultPlan, FaultRule } from './types';

/** Every endpoint a rule can name, as the counts in FaultState name them. */
export const FAULT_ENDPOINTS: readonly FaultEndpoint[] = [
  'info',
  'auth/login',
  'credentials/list',
  'credentials/info',
  'credentials/authorize',
  'credentials/sendOTP',
  'signatures/signHash',
  'signatures/timestamp',
  'oauth2/token',
  'tsa',
  'ocsp',
  'crl',
];

/** Endpoints outside the CSC API: a `csc` rule never reaches them. */
const NOT_CSC: ReadonlySet<FaultEndpoint> = new Set(['oauth2/token', 'tsa', 'ocsp', 'crl']);

// Short names for the spec string; the full CSC method names work too.
const ENDPOINT_NAMES: Record<string, FaultEndpoint | 'csc'> = {
  csc: 'csc',
  login: 'auth/login',
  credentialsList: 'credentials/list',
  credentialsInfo: 'credentials/info',
  authorize: 'credentials/authorize',
  sendOTP: 'credentials/sendOTP',
  signHash: 'signatures/signHash',
  timestamp: 'signatures/timestamp',
  token: 'oauth2/token',
  ...Object.fromEntries(FAULT_ENDPOINTS.map((e) => [e, e])),
};

const FAULTS = ['status', 'latency', 'hang', 'drop', 'signatures', 'sad-expiry', 'limit'] as const;
/** Faults that decide the answer: a request gets at most one of them. */
export const ANSWER_FAULTS: ReadonlySet<FaultRule['fault']> = new Set([
  'status',
  'hang',
  'drop',
  'signatures',
]);

/** Whether `rule` applies to requests of `endpoint`: `csc` is every CSC method, never the token endpoint
 * nor the TSA, OCSP and CRL endpoints. */
export function ruleMatches(rule: FaultRule, endpoint: FaultEndpoint): boolean {
  return rule.endpoint === endpoint || (rule.endpoint === 'csc' && !NOT_CSC.has(endpoint));
}

const nonNegative = z.number().min(0, 'must be >= 0');
const base = {
  endpoint: z.string(),
  rate: z.number().min(0, 'must be from 0 to 1').max(1, 'must be from 0 to 1').default(1),
  max: z.number().int('must be a whole number').min(1, 'must be >= 1').optional(),
};
const ruleSchemas = {
  status: z.strictObject({
    ...base,
    fault: z.literal('status'),
    status: z.union([z.literal(500), z.literal(503), z.literal(429)], { error: 'must be 500, 503 or 429' }),
    retryAfterSec: z.number().int('must be a whole number of seconds').min(0, 'must be >= 0').optional(),
  }),
  latency: z.strictObject({
    ...base,
    fault: z.literal('latency'),
    ms: nonNegative.optional(),
    minMs: nonNegative.optional(),
    maxMs: nonNegative.optional(),
  }),
  hang: z.strictObject({ ...base, fault: z.literal('hang') }),
  drop: z.strictObject({
    ...base,
    fault: z.literal('drop'),
    when: z.enum(['before', 'after', 'mid'], { error: 'must be before, after or mid' }).default('before'),
  }),
  signatures: z.strictObject({
    ...base,
    fault: z.literal('signatures'),
    mode: z.enum(['missing', 'extra', 'wrong-hash', 'corrupt'], {
      error: 'must be missing, extra, wrong-hash or corrupt',
    }),
  }),
  limit: z.strictObject({
    ...base,
    fault: z.literal('limit'),
    perSecond: z.number().int('must be a whole number').min(1, 'must be >= 1'),
  }),
  'sad-expiry': z.strictObject({
    ...base,
    fault: z.literal('sad-expiry'),
    afterSec: z.number().gt(0, 'must be > 0').optional(),
    afterUses: z.number().int('must be a whole number').min(0, 'must be >= 0').optional(),
  }),
};

function fail(label: string, detail: string, cause?: unknown): never {
  throw new SandboxError(`${label}: ${detail}`, cause === undefined ? undefined : { cause });
}

function zodDetail(error: z.ZodError): string {
  const issue = error.issues[0]!;
  const field = issue.path.map(String).join('.');
  return field === '' ? issue.message : `${field} ${issue.message}`;
}

/** One rule of a JSON plan (or one built from a spec item), checked and normalised. */
export function parseFaultRule(value: unknown, label: string): FaultRule {
  const fault = (value as { fault?: unknown } | null)?.fault;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(label, 'must be an object');
  if (!FAULTS.includes(fault as (typeof FAULTS)[number])) {
    fail(label, `fault must be one of ${FAULTS.join(', ')}, not ${JSON.stringify(fault)}`);
  }
  const parsed = ruleSchemas[fault as (typeof FAULTS)[number]].safeParse(value);
  if (!parsed.success) fail(label, zodDetail(parsed.error));
  const r = parsed.data;
  const endpoint = ENDPOINT_NAMES[r.endpoint];
  if (endpoint === undefined) {
    fail(label, `unknown endpoint ${JSON.stringify(r.endpoint)} (${Object.keys(ENDPOINT_NAMES).join(', ')})`);
  }
  const common = { endpoint, rate: r.rate, ...(r.max === undefined ? {} : { max: r.max }) };
  switch (r.fault) {
    case 'status':
      // A 429 without Retry-After tells a client nothing about when to come back: say 1 s unless told.
      return {
        ...common,
        fault: 'status',
        status: r.status,
        ...(r.retryAfterSec !== undefined || r.status === 429 ? { retryAfterSec: r.retryAfterSec ?? 1 } : {}),
      };
    case 'latency': {
      const fixed = r.ms !== undefined;
      if (fixed === (r.minMs !== undefined || r.maxMs !== undefined)) {
        fail(label, 'latency takes ms (fixed) or minMs and maxMs (a range), not both or neither');
      }
      const minMs = r.ms ?? r.minMs;
      const maxMs = r.ms ?? r.maxMs;
      if (minMs === undefined || maxMs === undefined)
        fail(label, 'a latency range needs both minMs and maxMs');
      if (minMs > maxMs) fail(label, `latency minMs ${minMs} is above maxMs ${maxMs}`);
      return { ...common, fault: 'latency', minMs, maxMs };
    }
    case 'hang':
      return { ...common, fault: 'hang' };
    case 'drop':
      return { ...common, fault: 'drop', when: r.when };
    case 'signatures':
      if (endpoint !== 'signatures/signHash') {
        fail(label, `signatures faults apply to signatures/signHash only, not ${endpoint}`);
      }
      return { ...common, fault: 'signatures', mode: r.mode };
    case 'limit':
      // A limit holds for every request: a rate or a max would make it something else.
      if (r.rate !== 1 || r.max !== undefined) fail(label, 'a limit takes no rate and no max');
      return { endpoint, rate: 1, fault: 'limit', perSecond: r.perSecond };
    case 'sad-expiry':
      if (endpoint !== 'credentials/authorize') {
        fail(label, `sad-expiry applies to credentials/authorize only, not ${endpoint}`);
      }
      if (r.afterSec === undefined && r.afterUses === undefined) {
        fail(label, 'sad-expiry needs afterSec, afterUses or both');
      }
      return {
        ...common,
        fault: 'sad-expiry',
        ...(r.afterSec === undefined ? {} : { afterSec: r.afterSec }),
        ...(r.afterUses === undefined ? {} : { afterUses: r.afterUses }),
      };
  }
}

/** A request gets at most one answer fault, so per endpoint their rates may add up to 1 at most. */
function checkRateSums(rules: readonly FaultRule[], where: string): void {
  for (const endpoint of FAULT_ENDPOINTS) {
    const answering = rules
      .map((rule, i) => ({ rule, i }))
      .filter(({ rule }) => ANSWER_FAULTS.has(rule.fault) && ruleMatches(rule, endpoint));
    const sum = answering.reduce((s, { rule }) => s + rule.rate, 0);
    if (sum > 1 + 1e-9) {
      fail(
        where,
        `the rates of status, hang, drop and signatures faults on ${endpoint} add up to ${+sum.toFixed(6)} ` +
          `(rules ${answering.map(({ i }) => i + 1).join(', ')}); a request gets at most one, so at most 1`,
      );
    }
  }
}

function parseSeed(value: unknown, label: string): string {
  if ((typeof value === 'string' && value !== '') || Number.isSafeInteger(value)) return String(value);
  return fail(label, `seed must be a non-empty string or an integer, not ${JSON.stringify(value)}`);
}

/** A JSON plan `{"seed"?, "rules": [...]}`; `where` names its origin in errors (a file, the control endpoint). */
export function parseFaultPlan(value: unknown, where = 'faults'): FaultPlan & { seed?: string } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    fail(where, 'must be a JSON object with "rules" (and optionally "seed")');
  }
  const { seed, rules, ...rest } = value as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length > 0) fail(where, `unknown field ${JSON.stringify(unknown[0])} (fields: seed, rules)`);
  if (!Array.isArray(rules)) fail(where, '"rules" must be an array of fault rules');
  const parsed = rules.map((r, i) => parseFaultRule(r, `${where} rules[${i}]`));
  checkRateSums(parsed, where);
  return { ...(seed === undefined ? {} : { seed: parseSeed(seed, `${where} seed`) }), rules: parsed };
}

const NUMBER = String.raw`\d+(?:\.\d+)?|\.\d+`;
const DURATION = new RegExp(`^(${NUMBER})(ms|s)$`);

/** `200ms`, `1.5s` -> milliseconds; undefined when it is not a duration. */
function durationMs(text: string): number | undefined {
  const m = DURATION.exec(text);
  return m === null ? undefined : Number(m[1]) * (m[2] === 's' ? 1000 : 1);
}

function parseRate(text: string, label: string): number {
  const m = new RegExp(`^(${NUMBER})(%)?$`).exec(text);
  if (m === null) fail(label, `rate ${JSON.stringify(text)} is not a number from 0 to 1 (or a percentage)`);
  return Number(m[1]) / (m[2] === '%' ? 100 : 1);
}

/** `latency:200ms` / `latency:50-200ms` / `latency:50ms-1s`. */
function latencyFields(arg: string | undefined, label: string): Record<string, number> {
  const usage = 'latency needs a duration or a range, e.g. latency:200ms or latency:50-200ms';
  if (arg === undefined) fail(label, usage);
  const fixed = durationMs(arg);
  if (fixed !== undefined) return { ms: fixed };
  const parts = arg.split('-');
  if (parts.length !== 2) fail(label, `${usage}, not ${JSON.stringify(arg)}`);
  const [from = '', to = ''] = parts;
  const unit = /(ms|s)$/.exec(to)?.[1] ?? '';
  const minMs = durationMs(from) ?? durationMs(from + unit);
  const maxMs = durationMs(to);
  if (minMs === undefined || maxMs === undefined) fail(label, `${usage}, not ${JSON.stringify(arg)}`);
  return { minMs, maxMs };
}

function noArgs(fault: string, args: string[], label: string): void {
  if (args.length > 0) fail(label, `${fault} takes no arguments, got ${JSON.stringify(args.join(':'))}`);
}

/** One `endpoint:fault[:arg...][=rate]` item of a spec string, as a raw rule for parseFaultRule. */
function specItemRule(item: string, label: string): Record<string, unknown> {
  const eq = item.split('=');
  if (eq.length > 2) fail(label, 'one "=" at most (endpoint:fault[:arg...][=rate])');
  const [head = '', rateText] = eq;
  const [endpoint = '', fault, ...args] = head.split(':').map((s) => s.trim());
  if (fault === undefined || fault === '' || endpoint === '') {
    fail(label, 'expected endpoint:fault[:arg...][=rate], e.g. signHash:503=0.1');
  }
  const rule: Record<string, unknown> = { endpoint };
  if (rateText !== undefined) rule.rate = parseRate(rateText.trim(), label);
  switch (fault) {
    case '500':
    case '503':
    case '429': {
      Object.assign(rule, { fault: 'status', status: Number(fault) });
      if (args.length > 1) fail(label, `${fault} takes one argument at most (Retry-After, e.g. ${fault}:2s)`);
      if (args[0] !== undefined) {
        const ms = durationMs(args[0]);
        if (ms === undefined || ms % 1000 !== 0) {
          fail(label, `Retry-After must be whole seconds such as 2s, not ${JSON.stringify(args[0])}`);
        }
        rule.retryAfterSec = ms / 1000;
      }
      return rule;
    }
    case 'latency':
      if (args.length > 1) fail(label, 'latency takes one argument (a duration or a range)');
      return Object.assign(rule, { fault: 'latency' }, latencyFields(args[0], label));
    case 'hang':
      noArgs(fault, args, label);
      return Object.assign(rule, { fault: 'hang' });
    case 'drop':
      if (args.length > 1) fail(label, 'drop takes one argument at most (before, after or mid)');
      if (args[0] !== undefined && !['before', 'after', 'mid'].includes(args[0])) {
        fail(label, `drop takes before, after or mid, not ${JSON.stringify(args[0])}`);
      }
      return Object.assign(rule, { fault: 'drop' }, args[0] === undefined ? {} : { when: args[0] });
    case 'missing':
    case 'extra':
    case 'wrong-hash':
    case 'corrupt':
      noArgs(fault, args, label);
      return Object.assign(rule, { fault: 'signatures', mode: fault });
    case 'limit': {
      const per = args.length === 1 ? /^(\d+)\/s$/.exec(args[0]!) : null;
      if (per === null) fail(label, 'limit needs requests per second, e.g. signHash:limit:10/s');
      return Object.assign(rule, { fault: 'limit', perSecond: Number(per[1]) });
    }
    case 'sad-expiry': {
      Object.assign(rule, { fault: 'sad-expiry' });
      if (args.length === 0)
        fail(label, 'sad-expiry needs a time, a number of uses or both (sad-expiry:10s:3uses)');
      for (const arg of args) {
        const uses = /^(\d+)uses?$/.exec(arg);
        const ms = durationMs(arg);
        if (uses !== null) rule.afterUses = Number(uses[1]);
        else if (ms !== undefined) rule.afterSec = ms / 1000;
        else fail(label, `sad-expiry takes a time (10s, 500ms) or uses (3uses), not ${JSON.stringify(arg)}`);
      }
      return rule;
    }
    default:
      return fail(
        label,
        `unknown fault ${JSON.stringify(fault)} (500, 503, 429, latency, hang, drop, missing, extra, wrong-hash, corrupt, sad-expiry, limit)`,
      );
  }
}

/** The compact spec string: comma-separated `endpoint:fault[:arg...][=rate]` items and `seed=S`. */
export function parseFaultSpec(spec: string, where = 'faults spec'): FaultPlan & { seed?: string } {
  if (spec.trim() === '') return { rules: [] };
  let seed: string | undefined;
  const rules: FaultRule[] = [];
  spec.split(',').forEach((raw, i) => {
    const item = raw.trim();
    const label = `${where} item ${i + 1} ${JSON.stringify(item)}`;
    if (item === '') fail(label, 'empty item (two commas in a row?)');
    if (item.startsWith('seed=')) {
      if (seed !== undefined) fail(label, 'seed is given twice');
      seed = parseSeed(item.slice('seed='.length), label);
      return;
    }
    rules.push(parseFaultRule(specItemRule(item, label), label));
  });
  checkRateSums(rules, where);
  return { ...(seed === undefined ? {} : { seed }), rules };
}

/** A plan or a spec string (SandboxOptions.faults), parsed. */
export function toFaultPlan(faults: FaultPlan | string, where = 'sandbox option faults'): FaultPlan {
  return typeof faults === 'string' ? parseFaultSpec(faults, where) : parseFaultPlan(faults, where);
}

/**
 * The `--faults` argument: a path ending in `.json` is read as a JSON plan, text starting with `{` is
 * one inline, anything else is a spec string.
 */
export async function loadFaultsArgument(arg: string): Promise<FaultPlan> {
  const text = arg.trim();
  if (text.startsWith('{')) return parseFaultPlan(parseJson(text, '--faults'), '--faults');
  if (!/\.json$/i.test(text)) return parseFaultSpec(text, '--faults');
  let content: string;
  try {
    content = await fs.readFile(text, 'utf8');
  } catch (err) {
    return fail(`--faults file ${text}`, 'cannot be read', err);
  }
  return parseFaultPlan(parseJson(content, `--faults file ${text}`), `--faults file ${text}`);
}

function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    return fail(where, `is not valid JSON (${err instanceof Error ? err.message : String(err)})`, err);
  }
}

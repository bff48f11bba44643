// The fault injector: holds the rules in force, decides per request (from seeded draws) which faults it
// gets, and counts and logs what was injected. It decides; server.ts and the routes carry faults out.
// Draw order is fixed per stream (rule x endpoint), so with a seed the n-th request to an endpoint
// always gets the same faults, whatever else the sandbox is doing.
import type { Logger } from 'pino';
import { SeededDraws } from './fault-draws';
import { ANSWER_FAULTS, FAULT_ENDPOINTS, ruleMatches, toFaultPlan } from './fault-spec';
import type {
  DropFaultRule,
  FaultEndpoint,
  FaultPlan,
  FaultRule,
  FaultState,
  HangFaultRule,
  SadExpiryFaultRule,
  SignaturesFaultRule,
  StatusFaultRule,
} from './types';

export type AnswerFaultRule = StatusFaultRule | HangFaultRule | DropFaultRule | SignaturesFaultRule;

/** A rule chosen for one request; `generation` tells a decision made under rules since replaced. */
export interface Chosen<R extends FaultRule> {
  rule: R;
  index: number;
  generation: number;
}

export interface FaultDecision {
  endpoint: FaultEndpoint;
  /** Added delay (sum of the latency rules that hit); already counted. */
  latencyMs: number;
  /** At most one fault that decides the answer. */
  answer?: Chosen<AnswerFaultRule>;
  /** credentials/authorize: the SAD it issues expires early. */
  sadExpiry?: Chosen<SadExpiryFaultRule>;
  /** Over a limit rule's requests per second: answered 429 with this Retry-After; already counted. */
  limited?: { retryAfterSec: number };
  /** Draws for a signatures fault (which signature to tamper with). */
  draw: () => number;
}

/** Where a fault happened, for the log line (never bodies, tokens or SADs). */
export interface FaultSite {
  method: string;
  path: string;
}

/** The counting key of a rule's fault: `status:503`, `latency`, `drop:mid`, `signatures:extra`, ... */
export function faultKind(rule: FaultRule): string {
  switch (rule.fault) {
    case 'status':
      return `status:${rule.status}`;
    case 'drop':
      return `drop:${rule.when}`;
    case 'signatures':
      return `signatures:${rule.mode}`;
    default:
      return rule.fault;
  }
}

export const SAD_EXPIRED_EARLY = 'sad-expired-early';

export class FaultInjector {
  private rules: FaultRule[] = [];
  private draws = new SeededDraws();
  private generation = 0;
  /** Per rule: injections done, and those chosen but not carried out yet (so `max` holds under load). */
  private injectedByRule: number[] = [];
  private pendingByRule: number[] = [];
  private injected = new Map<FaultEndpoint, Map<string, number>>();
  private requests = new Map<FaultEndpoint, number>();
  private hangingNow = 0;
  /** Per limit rule: the second being counted and the requests let through in it. */
  private windows = new Map<number, { second: number; calls: number }>();

  constructor(
    private readonly logger: Logger,
    plan?: FaultPlan | string,
    private readonly now: () => number = Date.now,
  ) {
    if (plan !== undefined) this.replace(plan);
  }

  /** Replaces the rules; the draws restart from the plan's seed (or the current one). */
  replace(plan: FaultPlan | string, options: { resetCounts?: boolean } = {}): FaultState {
    const parsed = toFaultPlan(plan);
    this.rules = parsed.rules;
    this.draws = new SeededDraws(parsed.seed === undefined ? this.draws.seed : String(parsed.seed));
    this.generation += 1;
    this.injectedByRule = this.rules.map(() => 0);
    this.pendingByRule = this.rules.map(() => 0);
    this.requests.clear();
    this.windows.clear();
    if (options.resetCounts === true) this.injected.clear();
    this.logger.info({ seed: this.draws.seed, rules: this.rules }, 'sandbox: fault rules set');
    return this.state();
  }

  /** The faults for one request to `endpoint`, or undefined when no rule names it. */
  decide(endpoint: FaultEndpoint, site: FaultSite): FaultDecision | undefined {
    const matching = this.rules
      .map((rule, index) => ({ rule, index }))
      .filter((m) => ruleMatches(m.rule, endpoint));
    if (matching.length === 0) return undefined;
    this.requests.set(endpoint, (this.requests.get(endpoint) ?? 0) + 1);
    const stream = (purpose: string, index?: number) => `${endpoint}|${purpose}|${index ?? ''}`;
    const decision: FaultDecision = {
      endpoint,
      latencyMs: 0,
      draw: () => this.draws.next(stream('tamper')),
    };

    // Every rule draws on every request, hit or not, so one rule's rate never shifts another's faults.
    let answerDraw: number | undefined;
    let answerFloor = 0;
    for (const { rule, index } of matching) {
      if (rule.fault === 'limit') {
        const at = this.now();
        const second = Math.floor(at / 1000);
        const w = this.windows.get(index);
        const counted = w?.second === second ? w : { second, calls: 0 };
        this.windows.set(index, counted);
        if (counted.calls < rule.perSecond) {
          counted.calls += 1;
        } else if (decision.limited === undefined) {
          decision.limited = { retryAfterSec: Math.max(1, Math.ceil(((second + 1) * 1000 - at) / 1000)) };
          this.count(endpoint, index, this.generation, 'limit', site);
        }
      } else if (rule.fault === 'latency') {
        const hit = this.draws.next(stream('latency', index)) < rule.rate;
        const spread = this.draws.next(stream('latency-ms', index));
        if (hit && this.take(index, rule)) {
          const ms = rule.minMs + Math.round(spread * (rule.maxMs - rule.minMs));
          decision.latencyMs += ms;
          this.count(endpoint, index, this.generation, 'latency', site, { ms });
        }
      } else if (rule.fault === 'sad-expiry') {
        const hit = this.draws.next(stream('sad', index)) < rule.rate;
        if (hit && this.take(index, rule)) decision.sadExpiry = { rule, index, generation: this.generation };
      } else if (ANSWER_FAULTS.has(rule.fault)) {
        // One draw per request for all answer faults: rule k owns the slice [floor, floor + rate).
        answerDraw ??= this.draws.next(stream('answer'));
        const hit = answerDraw >= answerFloor && answerDraw < answerFloor + rule.rate;
        answerFloor += rule.rate;
        if (hit && decision.answer === undefined && this.take(index, rule)) {
          decision.answer = { rule: rule as AnswerFaultRule, index, generation: this.generation };
        }
      }
    }
    return decision;
  }

  /** A chosen fault was carried out: count it and log its kind. */
  applied(endpoint: FaultEndpoint, chosen: Chosen<FaultRule>, site: FaultSite): void {
    if (chosen.generation === this.generation) this.pendingByRule[chosen.index]! -= 1;
    this.count(endpoint, chosen.index, chosen.generation, faultKind(chosen.rule), site);
  }

  /** A chosen fault could not be carried out (the request was refused, or the client left first). */
  released(chosen: Chosen<FaultRule> | undefined): void {
    if (chosen !== undefined && chosen.generation === this.generation) this.pendingByRule[chosen.index]! -= 1;
  }

  /** A SAD shortened by a sad-expiry fault was refused as expired. */
  sadExpiredEarly(): void {
    this.bump('signatures/signHash', SAD_EXPIRED_EARLY);
    this.logger.info({ fault: SAD_EXPIRED_EARLY, endpoint: 'signatures/signHash' }, 'sandbox: fault effect');
  }

  hangStarted(): void {
    this.hangingNow += 1;
  }

  hangEnded(): void {
    this.hangingNow -= 1;
  }

  state(): FaultState {
    const injected: FaultState['injected'] = {};
    let total = 0;
    for (const endpoint of FAULT_ENDPOINTS) {
      const kinds = this.injected.get(endpoint);
      if (kinds === undefined) continue;
      injected[endpoint] = Object.fromEntries(kinds);
      for (const [kind, n] of kinds) if (kind !== SAD_EXPIRED_EARLY) total += n;
    }
    return {
      seed: this.draws.seed,
      rules: this.rules.map((rule, i) => ({ ...rule, injected: this.injectedByRule[i] ?? 0 })),
      injected,
      total,
      requests: Object.fromEntries(this.requests),
      hanging: this.hangingNow,
    };
  }

  /** Reserves one injection of rule `index` unless its `max` is used up. */
  private take(index: number, rule: FaultRule): boolean {
    const taken = this.injectedByRule[index]! + this.pendingByRule[index]!;
    if (rule.max !== undefined && taken >= rule.max) return false;
    // Latency is carried out at once (and counted then); other faults are pending until they are.
    if (rule.fault !== 'latency') this.pendingByRule[index]! += 1;
    return true;
  }

  private count(
    endpoint: FaultEndpoint,
    index: number,
    generation: number,
    kind: string,
    site: FaultSite,
    extra: Record<string, unknown> = {},
  ): void {
    if (generation === this.generation) this.injectedByRule[index]! += 1;
    this.bump(endpoint, kind);
    this.logger.info({ fault: kind, endpoint, ...site, ...extra }, 'sandbox: fault injected');
  }

  private bump(endpoint: FaultEndpoint, kind: string): void {
    const kinds = this.injected.get(endpoint) ?? new Map<string, number>();
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
    this.injected.set(endpoint, kinds);
  }
}

// `GET /sandbox/faults` (the rules in force, the seed, and the faults injected per endpoint and kind)
// and `POST /sandbox/faults` (replace the rules: `{"seed"?, "rules": [...]}` or `{"spec": "..."}`, plus
// `"resetCounts": true` to zero the counts). A test hook outside the CSC paths: no client of the CSC
// API ever calls it, and no fault is ever injected into it.
import type { RouteRequest, RouteResult } from './context';
import { cscErrors } from './csc-errors';
import { parseFaultPlan, parseFaultSpec } from './fault-spec';
import { optionalBoolean } from './http-io';
import { SandboxError } from './sandbox-error';
import type { FaultPlan } from './types';

export const FAULTS_PATH = '/sandbox/faults';

export function handleFaultControl(r: RouteRequest): RouteResult {
  const { ctx, req, params } = r;
  if (req.method !== 'POST') return { body: ctx.faults.state() };
  const resetCounts = optionalBoolean(params, 'resetCounts');
  const { spec, resetCounts: _reset, ...planFields } = params;
  let plan: FaultPlan;
  try {
    if (spec !== undefined) {
      if (typeof spec !== 'string') throw cscErrors.missingParam('spec', 'string');
      if (Object.keys(planFields).length > 0) {
        throw cscErrors.badRequest('Send either spec or rules (and seed), not both');
      }
      plan = parseFaultSpec(spec, `POST ${FAULTS_PATH} spec`);
    } else {
      plan = parseFaultPlan(planFields, `POST ${FAULTS_PATH}`);
    }
  } catch (err) {
    if (err instanceof SandboxError) throw cscErrors.badRequest(err.message);
    throw err;
  }
  return { body: ctx.faults.replace(plan, { resetCounts }) };
}

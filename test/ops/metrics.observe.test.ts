// What the sealing parts report becomes exact Prometheus counts and histograms in the sealer's own
// registry; label values stay tenant names and fixed kinds, whatever an event carries.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { register as globalRegister } from 'prom-client';
import { fanOut, type SealingEvent } from '../../src/common/sealing-events';
import { SealerMetrics } from '../../src/ops/sealer-metrics';
import { parseExposition, samples, types, value } from '../helpers/prom-text';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const T = { timeout: TEST_TIMEOUT_MS };

function feed(metrics: SealerMetrics, events: SealingEvent[]): void {
  for (const e of events) metrics.observe(e);
}

test(
  'sealed and failed invoices are counted by tenant and level / kind, with seal durations',
  T,
  async () => {
    const m = new SealerMetrics({ tenants: ['sakura', 'fuji'], defaultMetrics: false });
    const sealed = (tenant: string, level: string, ms: number): SealingEvent => ({
      type: 'sealed',
      tenant,
      job: `${tenant}-nightly`,
      runId: 'run-2026-12-01-abc',
      level,
      ms,
    });
    const failed = (tenant: string, kind: string): SealingEvent => ({
      type: 'failed',
      tenant,
      job: `${tenant}-nightly`,
      runId: 'run-2026-12-01-abc',
      kind,
    });
    feed(m, [
      sealed('sakura', 'B-LTA', 40),
      sealed('sakura', 'B-LTA', 700),
      sealed('sakura', 'B-LTA', 3_000),
      sealed('fuji', 'B-T', 90),
      sealed('fuji', 'PAdES-INV-000123', 90),
      failed('sakura', 'unsealable'),
      failed('sakura', 'unsealable'),
      failed('fuji', 'refused'),
      // a kind nobody defined (here an invoice number, as a bug might pass) and a tenant not configured
      failed('fuji', 'INV-000123'),
      failed('kaede', 'transient'),
    ]);
    const text = await m.metrics();
    const s = parseExposition(text);
    assert.equal(value(s, 'sealer_invoices_sealed_total', { tenant: 'sakura', level: 'B-LTA' }), 3);
    assert.equal(value(s, 'sealer_invoices_sealed_total', { tenant: 'fuji', level: 'B-T' }), 1);
    assert.equal(value(s, 'sealer_invoices_sealed_total', { tenant: 'fuji', level: 'unknown' }), 1);
    assert.equal(value(s, 'sealer_invoices_failed_total', { tenant: 'sakura', kind: 'unsealable' }), 2);
    assert.equal(value(s, 'sealer_invoices_failed_total', { tenant: 'fuji', kind: 'refused' }), 1);
    assert.equal(value(s, 'sealer_invoices_failed_total', { tenant: 'fuji', kind: 'unknown' }), 1);
    assert.equal(value(s, 'sealer_invoices_failed_total', { tenant: 'other', kind: 'transient' }), 1);
    assert.equal(samples(s, 'sealer_invoices_failed_total').length, 4, 'no other series');

    const seal = { tenant: 'sakura', level: 'B-LTA' };
    assert.equal(value(s, 'sealer_seal_seconds_count', seal), 3);
    assert.ok(Math.abs(value(s, 'sealer_seal_seconds_sum', seal)! - 3.74) < 1e-9);
    assert.equal(value(s, 'sealer_seal_seconds_bucket', { ...seal, le: '0.05' }), 1);
    assert.equal(value(s, 'sealer_seal_seconds_bucket', { ...seal, le: '1' }), 2);
    assert.equal(value(s, 'sealer_seal_seconds_bucket', { ...seal, le: '5' }), 3);
    assert.equal(value(s, 'sealer_seal_seconds_bucket', { ...seal, le: '+Inf' }), 3);

    // Nothing unbounded ever becomes a label value.
    assert.doesNotMatch(text, /INV-000123|run-2026|nightly|kaede/);
    assert.equal(types(text).get('sealer_seal_seconds'), 'histogram');
    assert.equal(types(text).get('sealer_invoices_sealed_total'), 'counter');
    await m.close();
  },
);

test('signHash latency and batch size, authorisations, unused signatures and timestamps', T, async () => {
  const m = new SealerMetrics({ defaultMetrics: false });
  const sign = (ok: boolean, ms: number, hashes: number): SealingEvent => ({
    type: 'signHash',
    tenant: 'sakura',
    credentialId: 'sakura-eseal-rsa',
    hashes,
    ms,
    ok,
    runs: { 'run-1': hashes },
  });
  feed(m, [
    sign(true, 120, 20),
    sign(true, 180, 20),
    sign(true, 1_500, 7),
    sign(false, 31_000, 100),
    {
      type: 'authorize',
      tenant: 'sakura',
      credentialId: 'sakura-eseal-rsa',
      numSignatures: 100,
      runs: ['r'],
    },
    { type: 'authorize', tenant: 'sakura', credentialId: 'sakura-eseal-rsa', numSignatures: 47, runs: ['r'] },
    { type: 'authorize', tenant: 'fuji', credentialId: 'fuji-eseal', numSignatures: 1, runs: ['r'] },
    { type: 'signaturesUnused', tenant: 'sakura', credentialId: 'sakura-eseal-rsa', count: 7 },
    { type: 'signaturesUnused', tenant: 'sakura', credentialId: 'sakura-eseal-rsa', count: 3 },
    { type: 'timestamp', tenant: 'sakura', source: 'tsa', ms: 60, ok: true },
    { type: 'timestamp', tenant: 'sakura', source: 'tsa', ms: 450, ok: true },
    { type: 'timestamp', tenant: 'fuji', source: 'provider', ms: 2_500, ok: false },
  ]);
  const s = parseExposition(await m.metrics());
  const ok = { tenant: 'sakura', outcome: 'ok' };
  assert.equal(value(s, 'sealer_sign_hash_seconds_count', ok), 3);
  assert.equal(value(s, 'sealer_sign_hash_seconds_bucket', { ...ok, le: '0.1' }), 0);
  assert.equal(value(s, 'sealer_sign_hash_seconds_bucket', { ...ok, le: '0.2' }), 2);
  assert.equal(value(s, 'sealer_sign_hash_seconds_bucket', { ...ok, le: '2' }), 3);
  const err = { tenant: 'sakura', outcome: 'error' };
  assert.equal(value(s, 'sealer_sign_hash_seconds_count', err), 1);
  assert.equal(
    value(s, 'sealer_sign_hash_seconds_bucket', { ...err, le: '30' }),
    0,
    '31 s is past every bound',
  );
  assert.equal(value(s, 'sealer_sign_hash_seconds_bucket', { ...err, le: '+Inf' }), 1);
  assert.equal(value(s, 'sealer_sign_hash_seconds_sum', err), 31);

  const batch = { tenant: 'sakura' };
  assert.equal(value(s, 'sealer_sign_hash_batch_size_count', batch), 4);
  assert.equal(value(s, 'sealer_sign_hash_batch_size_sum', batch), 147);
  assert.equal(value(s, 'sealer_sign_hash_batch_size_bucket', { ...batch, le: '10' }), 1);
  assert.equal(value(s, 'sealer_sign_hash_batch_size_bucket', { ...batch, le: '20' }), 3);
  assert.equal(value(s, 'sealer_sign_hash_batch_size_bucket', { ...batch, le: '100' }), 4);
  assert.equal(value(s, 'sealer_sign_hash_batch_size_bucket', { ...batch, le: '1000' }), 4);

  assert.equal(value(s, 'sealer_authorizations_total', { tenant: 'sakura' }), 2);
  assert.equal(value(s, 'sealer_authorizations_total', { tenant: 'fuji' }), 1);
  assert.equal(value(s, 'sealer_signatures_authorized_total', { tenant: 'sakura' }), 147);
  assert.equal(value(s, 'sealer_signatures_authorized_total', { tenant: 'fuji' }), 1);
  assert.equal(value(s, 'sealer_signatures_unused_total', { tenant: 'sakura' }), 10);

  const tsa = { source: 'tsa', outcome: 'ok' };
  assert.equal(value(s, 'sealer_timestamp_seconds_count', tsa), 2);
  assert.equal(value(s, 'sealer_timestamp_seconds_bucket', { ...tsa, le: '0.05' }), 0);
  assert.equal(value(s, 'sealer_timestamp_seconds_bucket', { ...tsa, le: '0.1' }), 1);
  assert.equal(value(s, 'sealer_timestamp_seconds_bucket', { ...tsa, le: '0.5' }), 2);
  assert.equal(value(s, 'sealer_timestamp_seconds_count', { source: 'provider', outcome: 'error' }), 1);
  // the timestamp histogram is by source, not tenant
  assert.equal(samples(s, 'sealer_timestamp_seconds_count', { tenant: 'sakura' }).length, 0);
  await m.close();
});

test(
  'own registry with sealer_ process metrics; two instances side by side; the global one untouched',
  T,
  async () => {
    const a = new SealerMetrics();
    const b = new SealerMetrics();
    fanOut(a.observe, b.observe)({ type: 'failed', tenant: 'sakura', job: 'j', runId: 'r', kind: 'config' });
    const sa = parseExposition(await a.metrics());
    const sb = parseExposition(await b.metrics());
    for (const s of [sa, sb]) {
      assert.equal(value(s, 'sealer_invoices_failed_total', { tenant: 'sakura', kind: 'config' }), 1);
      assert.ok(value(s, 'sealer_process_cpu_user_seconds_total')! >= 0);
      assert.ok(value(s, 'sealer_process_resident_memory_bytes')! > 0);
      assert.ok(samples(s, 'sealer_nodejs_eventloop_lag_seconds').length > 0);
      assert.equal(
        samples(s, 'process_cpu_user_seconds_total').length,
        0,
        'every process metric is prefixed',
      );
    }
    assert.equal(globalRegister.getSingleMetric('sealer_invoices_failed_total'), undefined);
    assert.equal(globalRegister.getSingleMetric('sealer_process_cpu_user_seconds_total'), undefined);
    assert.equal(a.contentType, 'text/plain; version=0.0.4; charset=utf-8');
    // no Redis given: the gauges that need it are not registered at all
    assert.equal(a.registry.getSingleMetric('sealer_queue_depth'), undefined);
    assert.equal(a.registry.getSingleMetric('sealer_approvals_remaining'), undefined);
    await Promise.all([a.close(), b.close()]);
  },
);

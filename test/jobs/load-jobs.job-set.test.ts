// One tenant's broken job definition is named and left out; every other job still loads. Cross-file
// rules (one job name twice, one credential for two tenants or two custodies) leave out the files that
// break them, with the reason, and keep the rest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { findJob, JobConfigError, loadJobSet, loadJobs } from '../../src/jobs';
import { tempDir } from '../helpers/temp-dir';

const TIMEOUT = { timeout: 120_000 };

function job(name: string, tenant: string, credentialId: string, extra: Record<string, unknown> = {}) {
  return {
    name,
    cron: '0 2 * * *',
    tenant,
    export: {
      folder: 'inbox',
      columns: { invoiceNumber: 'no', customerName: 'c', amount: 'a', pdfPath: 'p' },
    },
    signing: { clientId: `${tenant}-app`, clientSecret: 'env:X', credentialId, ...extra },
    outbox: 'outbox',
  };
}

async function write(dir: string, file: string, body: unknown): Promise<string> {
  const at = path.join(dir, file);
  await fs.writeFile(at, typeof body === 'string' ? body : JSON.stringify(body));
  return at;
}

test('an invalid file is named with its job and reason; the good jobs load', TIMEOUT, async () => {
  const dir = await tempDir();
  await write(dir, 'acme.json', job('acme-nightly', 'acme', 'acme-cred'));
  const badField = await write(dir, 'globex.json', {
    ...job('globex-nightly', 'globex', 'g'),
    cron: 'never',
  });
  const notJson = await write(dir, 'initech.json', '{ "name": "initech-nightly", oops }');
  const set = await loadJobSet(dir);
  assert.deepEqual(
    set.jobs.map((j) => j.name),
    ['acme-nightly'],
  );
  assert.deepEqual(
    set.problems.map((p) => [p.file, p.job]),
    [
      [badField, 'globex-nightly'], // the name from the file's JSON
      [notJson, 'initech'], // not JSON: the file name stands in
    ],
  );
  assert.match(set.problems[0]!.reason, /globex\.json is invalid: cron: invalid cron expression/);
  assert.match(set.problems[1]!.reason, /initech\.json is not valid JSON at line 1/);
  for (const p of set.problems) assert.ok(p.error instanceof JobConfigError);

  // A named broken job says why; an unknown one lists what there is and what was left out.
  assert.throws(
    () => findJob(set.jobs, 'globex-nightly', set.problems),
    /^JobConfigError: job globex-nightly cannot be used: job definition .*globex\.json is invalid: cron/,
  );
  assert.throws(
    () => findJob(set.jobs, 'nosuch', set.problems),
    /no job named nosuch; known: acme-nightly; left out as broken: globex-nightly, initech/,
  );
  assert.equal(findJob(set.jobs, 'acme-nightly', set.problems).tenant, 'acme');

  // The strict loader still refuses the folder, naming every problem.
  await assert.rejects(loadJobs(dir), /2 job definitions cannot be used: .*globex\.json.*; .*initech\.json/);
});

test(
  'a credential claimed by two tenants leaves out the files that claim it, not the rest',
  TIMEOUT,
  async () => {
    const dir = await tempDir();
    const a = await write(dir, 'a.json', job('acme-nightly', 'acme', 'shared-cred'));
    const b = await write(dir, 'b.json', job('globex-nightly', 'globex', 'shared-cred'));
    await write(dir, 'c.json', job('initech-nightly', 'initech', 'initech-cred'));
    const set = await loadJobSet(dir);
    assert.deepEqual(
      set.jobs.map((j) => j.name),
      ['initech-nightly'],
    );
    assert.deepEqual(
      set.problems.map((p) => [p.file, p.job]),
      [
        [a, 'acme-nightly'],
        [b, 'globex-nightly'],
      ],
    );
    for (const p of set.problems) {
      assert.equal(
        p.reason,
        `credential shared-cred is used by tenant acme (${a}) and tenant globex (${b}); a credential belongs to one tenant`,
      );
    }
  },
);

test(
  'two custodies for one credential, or one job name twice, leave out those files only',
  TIMEOUT,
  async () => {
    const dir = await tempDir();
    await write(dir, 'a.json', job('acme-nightly', 'acme', 'acme-cred'));
    await write(dir, 'b.json', job('acme-weekly', 'acme', 'acme-cred', { custody: { mode: 'implicit' } }));
    const dupe1 = await write(dir, 'c.json', job('globex-nightly', 'globex', 'g1'));
    const dupe2 = await write(dir, 'd.json', job('globex-nightly', 'globex', 'g2'));
    await write(dir, 'e.json', job('initech-nightly', 'initech', 'i'));
    const set = await loadJobSet(dir);
    assert.deepEqual(
      set.jobs.map((j) => j.name),
      ['initech-nightly'],
    );
    assert.deepEqual(
      set.problems.map((p) => p.job),
      ['acme-nightly', 'acme-weekly', 'globex-nightly', 'globex-nightly'],
    );
    assert.match(
      set.problems[0]!.reason,
      /jobs acme-nightly and acme-weekly use credential acme-cred with different signing\.custody/,
    );
    assert.equal(set.problems[2]!.reason, `job name globex-nightly is defined twice: ${dupe1} and ${dupe2}`);
    assert.equal(set.problems[3]!.reason, set.problems[2]!.reason);
  },
);

test('a folder that cannot be read is still an error naming it', TIMEOUT, async () => {
  const dir = path.join(await tempDir(), 'missing');
  await assert.rejects(loadJobSet(dir), (err: Error) => {
    assert.ok(err instanceof JobConfigError);
    assert.match(err.message, new RegExp(`cannot read job definitions folder ${dir}`));
    return true;
  });
});

// Who approved, from the provider's ID token: the readable name with the provider's `sub` beside it when
// they differ, never a control or format character (they could forge lines in a terminal or the audit).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { approverOf } from '../../src/csc/authorization-code';

const token = (claims: Record<string, unknown>) =>
  `e30.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.sig`;

test('the approver named by an ID token', { timeout: 10_000 }, () => {
  assert.equal(
    approverOf(token({ sub: 'hanako@sakura.example', preferred_username: 'hanako@sakura.example' })),
    'hanako@sakura.example',
  );
  assert.equal(
    approverOf(token({ sub: '8c1f', email: 'hanako@sakura.example' })),
    'hanako@sakura.example (sub 8c1f)',
  );
  assert.equal(approverOf(token({ sub: '8c1f' })), '8c1f');
  assert.equal(
    approverOf(token({ sub: '8c1f', name: 'CFO\u202e Tanaka\u0085\n\u2028' })),
    'CFO Tanaka (sub 8c1f)',
  );
  assert.equal(approverOf(token({ name: '\u0000\u001b[31m' })), '[31m');
  for (const bad of [undefined, 42, '', 'no-dots', 'a.%%%.c', token({}), token({ sub: '\u0007' })])
    assert.equal(approverOf(bad), undefined, String(bad));
});

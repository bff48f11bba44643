// The 適格請求書発行事業者登録番号: "T" and 13 ASCII digits, and for a corporation the 法人番号 check digit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  corporateCheckDigit,
  registrationNumberProblem,
} from '../../../src/export/qualified/registration-number';
import { TEST_TIMEOUT_MS } from '../../helpers/timeouts';

// Real 法人番号, each published by or for its holder:
// - 7000012050002 国税庁 (itc.jipdec.or.jp/event/1_ono.html: "国税庁 (法人番号:7000012050002)")
// - 4011001098993 株式会社FoundingBase (qiita.com/mziyut/items/bab37dbce1c23771c817)
// - 7010705000725 日本税理士会連合会 (Wikipedia「法人番号」, its comparison of 会社法人等番号, 法人番号, 登録番号)
const REAL = ['7000012050002', '4011001098993', '7010705000725'];

test(
  'real corporate registration numbers pass, with their check digits',
  { timeout: TEST_TIMEOUT_MS },
  () => {
    for (const digits of REAL) {
      assert.equal(registrationNumberProblem(`T${digits}`), undefined, digits);
      assert.equal(corporateCheckDigit(digits.slice(1)), Number(digits[0]), digits);
    }
    // The worked example of the ordinance's formula: 12 base digits 123456789012 → Σ = 74, 74 mod 9 = 2, 9 − 2.
    assert.equal(corporateCheckDigit('123456789012'), 7);
  },
);

test(
  'a real number with any one base digit mistyped fails the check digit',
  { timeout: TEST_TIMEOUT_MS },
  () => {
    let tried = 0;
    for (const digits of REAL) {
      for (let i = 1; i < 13; i++) {
        // +1 mod 10, except 9 → 0: a change of 9 (0 ↔ 9) is the one mistype a mod-9 check cannot see.
        if (digits[i] === '9') continue;
        const typo = `${digits.slice(0, i)}${Number(digits[i]) + 1}${digits.slice(i + 1)}`;
        const problem = registrationNumberProblem(`T${typo}`);
        assert.match(problem ?? '', /fails the 法人番号 check digit/, typo);
        tried++;
      }
      const wrongCheck = `${(Number(digits[0]) % 9) + 1}${digits.slice(1)}`;
      assert.match(registrationNumberProblem(`T${wrongCheck}`) ?? '', /check digit/, wrongCheck);
    }
    assert.ok(tried >= 30, `only ${tried} typos tried`);
  },
);

test('a 0 mistyped as 9 passes: the limit of a mod-9 check digit', { timeout: TEST_TIMEOUT_MS }, () => {
  // 国税庁's 7000012050002 with its last 0 as 9: the sum changes by 18, a multiple of 9.
  assert.equal(registrationNumberProblem('T7000012050092'), undefined);
});

test(
  'each malformed registration number is refused, saying what is wrong',
  { timeout: TEST_TIMEOUT_MS },
  () => {
    const cases: [string, RegExp][] = [
      ['', /^is empty$/],
      ['7000012050002', /missing the leading "T"/],
      ['t7000012050002', /lowercase "t"/],
      ['X7000012050002', /does not start with "T"/],
      ['Ｔ7000012050002', /full-width characters \(Ｔ\)/],
      ['T７０００１２０５０００２', /full-width characters/],
      ['T7000012050002\u3000', /full-width characters/],
      ['T7-0000-1205-0002', /hyphens or spaces/],
      ['T 7000012050002', /hyphens or spaces/],
      ['T7000 0120 5000 2', /hyphens or spaces/],
      ['T7000012050002 ', /hyphens or spaces/],
      ['T7000－0120', /full-width/],
      ['T700001205000', /has 12 digits after the "T", not 13/],
      ['T70000120500021', /has 14 digits after the "T", not 13/],
      ['T', /has 0 digits/],
      ['T70000120500O2', /characters other than digits/],
      ['T1234567890123', /check digit \(first digit 1, the other 12 give 9\)/],
    ];
    for (const [value, reason] of cases) {
      const problem = registrationNumberProblem(value);
      assert.ok(problem !== undefined, `${JSON.stringify(value)} was accepted`);
      assert.match(problem, reason, JSON.stringify(value));
    }
  },
);

test(
  "an individual's number is checked for form only, not the corporate check digit",
  { timeout: TEST_TIMEOUT_MS },
  () => {
    assert.equal(registrationNumberProblem('T1234567890123', { issuer: 'individual' }), undefined);
    assert.match(registrationNumberProblem('T1234567890123', { issuer: 'corporation' }) ?? '', /check digit/);
    assert.match(
      registrationNumberProblem('1234567890123', { issuer: 'individual' }) ?? '',
      /missing the leading/,
    );
    assert.match(registrationNumberProblem('T123456789012', { issuer: 'individual' }) ?? '', /12 digits/);
  },
);

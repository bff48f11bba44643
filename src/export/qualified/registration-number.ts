// The 適格請求書発行事業者登録番号 an invoice must carry: "T" and 13 ASCII digits. For a corporation the
// digits are its 法人番号, whose first digit checks the other twelve; a cell that is wrong gets a reason
// saying what is wrong, never a silent repair (the number is printed on the invoice as given).
//
// Sources (2026-12-02):
// - Format: 国税庁 適格請求書発行事業者公表サイト「登録番号とは」
//   (https://www.invoice-kohyo.nta.go.jp/about-toroku/): 法人番号を有する課税事業者 "T" + 法人番号;
//   other businesses (個人事業者, 人格のない社団等) "T" + 13 digits that are not the マイナンバー and
//   do not collide with any 法人番号.
// - Check digit: 法人番号の指定等に関する省令 (平成26年財務省令第70号) 第2条: 9 − (Σ_{n=1..12} Pn × Qn を
//   9で除した余り), Pn the n-th digit counting from the lowest of the 12 base digits, Qn = 1 for odd n and
//   2 for even n (as quoted in e.g. https://qiita.com/kawasaki/items/bfa9f0edc32c132eff30, which also
//   notes the ordinance's brackets read as if the remainder were taken per term: the sum is meant).
//   Checked against 7000012050002 (国税庁), 4011001098993, 7010705000725 (日本税理士会連合会).
// - Individuals: no source found states that a 個人事業者's 13 digits carry this check digit; the NTA
//   page above says only that they are a separate series. Third parties disagree (one checker applies
//   the corporate rule to every T number, another says individuals' numbers generally fail it). So
//   `issuer: 'individual'` checks the form only: rejecting a real number would stop a tenant's invoices.

export type RegistrationIssuer = 'corporation' | 'individual';

export interface RegistrationNumberOptions {
  /**
   * Whose number it is. 'corporation' (the default) also checks the 法人番号 check digit; 'individual'
   * (個人事業者, 人格のない社団等 without a 法人番号) checks only "T" + 13 digits.
   */
  issuer?: RegistrationIssuer;
}

function quote(value: string): string {
  return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
}

/** The 法人番号 check digit (1 to 9) of 12 base digits, by 財務省令第70号 第2条. */
export function corporateCheckDigit(base: string): number {
  if (!/^[0-9]{12}$/.test(base)) throw new RangeError(`${quote(base)} is not 12 digits`);
  let sum = 0;
  for (let n = 1; n <= 12; n++) {
    const p = base.charCodeAt(12 - n) - 48;
    sum += p * (n % 2 === 1 ? 1 : 2);
  }
  return 9 - (sum % 9);
}

// Full-width forms (U+FF01-U+FF5E: Ｔ, １, －), the ideographic space, and the hyphen-like characters
// that IMEs and spreadsheets produce.
const FULL_WIDTH = /[\uFF01-\uFF5E\u3000]/g;
const SEPARATORS = /[\s\-\u2010-\u2015\u2212\u30FC\uFF0D]/;

/** Why `value` cannot be a registration number, or undefined if it can. */
export function registrationNumberProblem(
  value: string,
  options: RegistrationNumberOptions = {},
): string | undefined {
  const issuer = options.issuer ?? 'corporation';
  if (value.length === 0) return 'is empty';
  const wide = value.match(FULL_WIDTH);
  if (wide) {
    const shown = [...new Set(wide)].slice(0, 5).join(' ');
    return `${quote(value)} has full-width characters (${shown}): write "T" and the 13 digits in ASCII`;
  }
  if (SEPARATORS.test(value)) {
    return `${quote(value)} has hyphens or spaces: write "T" and the 13 digits with nothing between`;
  }
  if (value[0] === 't')
    return `${quote(value)} starts with a lowercase "t": the number starts with a capital "T"`;
  if (value[0] !== 'T') {
    return /^[0-9]/.test(value)
      ? `${quote(value)} is missing the leading "T" (a registration number is "T" and 13 digits)`
      : `${quote(value)} does not start with "T" (a registration number is "T" and 13 digits)`;
  }
  const digits = value.slice(1);
  if (!/^[0-9]*$/.test(digits)) return `${quote(value)} has characters other than digits after the "T"`;
  if (digits.length !== 13) return `${quote(value)} has ${digits.length} digits after the "T", not 13`;
  if (issuer === 'corporation') {
    const expected = corporateCheckDigit(digits.slice(1));
    const actual = Number(digits[0]);
    if (actual !== expected) {
      return (
        `${quote(value)} fails the 法人番号 check digit (first digit ${actual}, the other 12 give ${expected}): ` +
        `a digit is mistyped, or the issuer is not a corporation (set issuer 'individual')`
      );
    }
  }
  return undefined;
}

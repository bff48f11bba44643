// One folding for customer names, used both when a name is stored and when it is searched for, so
// that full-width ＡＢＣ, half-width ｶﾌﾞｼｷｶﾞｲｼｬ and upper case all find the same 取引先.

/** NFKC (width, compatibility forms) then lower case. */
export function foldCustomer(name: string): string {
  return name.normalize('NFKC').toLowerCase();
}

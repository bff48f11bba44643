// Searching logs and stores for secrets. A 6-digit PIN occurs by chance inside timestamps and hex
// digests of a large log, so a short secret counts only as a whole token (not inside a longer run of
// letters or digits); long secrets (tokens, SADs, client and TOTP secrets) count anywhere.
export function leaks(haystack: string, secret: string): boolean {
  if (secret.length >= 12) return haystack.includes(secret);
  const escaped = secret.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(?<![0-9A-Za-z])${escaped}(?![0-9A-Za-z])`).test(haystack);
}

import { createHash } from 'node:crypto';

/**
 * The one way ids are derived from several strings (a user id and their Idempotency-Key, ...):
 * the sha256 of the parts as a JSON array. Joining them with a separator is ambiguous, since a
 * user id may contain the separator: `${'victim:order'}:${'1'}` and `${'victim'}:${'order:1'}`
 * are the same string. The JSON array of strings is not: each part is quoted and escaped.
 */
export function derivedIdHex(...parts: string[]): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

import { randomBytes } from 'node:crypto';

/**
 * Ids that sort by creation time (48-bit millisecond time, then 80 random bits), with a type
 * prefix so an id says what it names: `gift_01J...`, `po_01J...`.
 */
const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
export function newId(prefix: string, now: Date = new Date()): string {
  let time = now.getTime();
  let timePart = '';
  for (let index = 0; index < 10; index += 1) {
    timePart = CROCKFORD[time % 32] + timePart;
    time = Math.floor(time / 32);
  }
  const random = randomBytes(16);
  let randomPart = '';
  for (let index = 0; index < 16; index += 1) randomPart += CROCKFORD[(random[index] ?? 0) % 32];
  return `${prefix}_${timePart}${randomPart}`;
}

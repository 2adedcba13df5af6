import { InvariantViolation } from './errors';

/**
 * The branch a complete switch never reaches: the compiler proves it unreachable. If a value the
 * types did not foresee gets there anyway (a forged op, a stale item read back), the bug is ours,
 * so it is an internal error (500, logged), never a 400 that would blame the caller.
 */
export function unreachable(value: never, what: string): never {
  throw new InvariantViolation(`unexpected ${what}: ${JSON.stringify(value)}`);
}

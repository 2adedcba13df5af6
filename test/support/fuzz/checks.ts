import { z } from 'zod';
import { API_ERRORS } from '../../../shared/http/openapi';
import type { RawAnswer } from './raw-http';

/** What every answer to hostile input must be: the contract's shape, no leak, no polluted prototype. */

// ---------------------------------------------------------------- contract checks

const KNOWN_CODES = new Map<string, number>(API_ERRORS.map((error) => [error.code, error.status]));

export const errorBodySchema = z.strictObject({
  error: z.strictObject({
    code: z.string().regex(/^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$/, 'UPPER_SNAKE'),
    message: z.string().min(1),
    details: z.array(z.strictObject({ path: z.string(), message: z.string() })).optional(),
    correlationId: z.string().optional(),
  }),
});

/** Signs of an internal leaking out: stack frames, error class names, file paths. */
const LEAK_PATTERNS: ReadonlyArray<[RegExp, string]> = [
  [/\n\s+at\s/, 'a stack frame'],
  [/\bat\s+\S+\s+\([^)]*:\d+:\d+\)/, 'a stack frame'],
  [/\b[A-Z][A-Za-z]*(?:Error|Exception):/, 'an error class name'],
  [/node_modules|\/work\/|\\\\src\\\\|\.ts:\d+/, 'a source path'],
  [
    /ECONNREFUSED|ETIMEDOUT|ResourceNotFound|ConditionalCheckFailed|TransactionCanceled|ValidationException/,
    'an internal error name',
  ],
];

export function leakIn(text: string): string | undefined {
  for (const [pattern, what] of LEAK_PATTERNS) if (pattern.test(text)) return what;
  return undefined;
}

/**
 * The contract for every answer to hostile input: under 500, JSON, and when not 2xx, exactly
 * `{ error: { code, message, details? } }` with a code of docs/API.md's table at its status. Throws
 * with what was wrong.
 */
export function checkHttpAnswer(answer: RawAnswer): void {
  const fail: (why: string) => never = (why) => {
    throw new Error(`${why}: ${answer.status} ${answer.text.slice(0, 500)}`);
  };
  if (answer.status >= 500 || answer.status < 200) fail('not a 2xx-4xx answer');
  const leak = leakIn(answer.text);
  if (leak) fail(`the answer leaks ${leak}`);
  if (answer.status >= 200 && answer.status < 300) return;
  let parsed: unknown;
  try {
    parsed = JSON.parse(answer.text);
  } catch {
    fail('the error body is not JSON');
  }
  const body = errorBodySchema.safeParse(parsed);
  if (!body.success)
    fail(
      `the error body is not in the contract's shape (${body.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')})`,
    );
  const expectedStatus = KNOWN_CODES.get(body.data.error.code);
  if (expectedStatus === undefined) fail(`unknown error code ${body.data.error.code}`);
  if (expectedStatus !== answer.status) fail(`code ${body.data.error.code} belongs with ${String(expectedStatus)}`);
  if (answer.status === 429 && answer.headers['retry-after'] === undefined) fail('429 without Retry-After');
  if (!String(answer.headers['content-type'] ?? '').includes('application/json'))
    fail('the error is not application/json');
}

/**
 * Prototype pollution: a handler (or a stand-in in the same process) that writes through
 * `table[id]` with id `__proto__` adds properties to every object of the process, and every
 * later request fails for no reason of its own. Checked after each case, and undone, so the
 * culprit is named and the other routes carry on.
 */
export function checkPrototypesUnpolluted(): void {
  const polluted: string[] = [];
  for (const prototype of [Object.prototype, Array.prototype, Function.prototype]) {
    for (const key of Object.keys(prototype)) {
      polluted.push(key);
      delete (prototype as Record<string, unknown>)[key];
    }
  }
  if (polluted.length > 0)
    throw new Error(
      `a request polluted Object.prototype with ${polluted.join(', ')} (this case, or one in flight on another route)`,
    );
}

const wsErrorSchema = z.object({
  type: z.literal('error'),
  requestId: z.string().optional(),
  error: z.strictObject({
    code: z.string().regex(/^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$/),
    message: z.string().min(1),
    details: z.array(z.strictObject({ path: z.string(), message: z.string() })).optional(),
    correlationId: z.string().optional(),
  }),
});
/** A reply on the socket: JSON with a `type`; an error is in the contract's shape and never INTERNAL. */
export function checkWsReply(text: string, requestId: string | undefined): void {
  const fail: (why: string) => never = (why) => {
    throw new Error(`${why}: ${text.slice(0, 500)}`);
  };
  const leak = leakIn(text);
  if (leak) fail(`the reply leaks ${leak}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    fail('the reply is not JSON');
  }
  const typed = z.object({ type: z.string().min(1) }).safeParse(parsed);
  if (!typed.success) fail('the reply has no type (the gateway answers `Internal server error` this way)');
  if (typed.data?.type !== 'error') return;
  const error = wsErrorSchema.safeParse(parsed);
  if (!error.success) fail(`the error is not in the contract's shape (${error.error.message})`);
  if (error.data.error.code === 'INTERNAL') fail('an INTERNAL error');
  if (!KNOWN_CODES.has(error.data.error.code)) fail(`unknown error code ${error.data.error.code}`);
  if (requestId !== undefined && error.data.requestId !== requestId)
    fail(`the error does not repeat the requestId ${JSON.stringify(requestId)}`);
}

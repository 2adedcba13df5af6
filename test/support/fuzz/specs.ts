import type fc from 'fast-check';
import { z } from 'zod';
import { resolve } from 'node:path';
import { HTTP_ROUTES, WEBSOCKET_ROUTES, type HttpRoute, type WebSocketRoute } from '../../../infra/routes';

/** How many cases a run makes, and the zod schemas each handler publishes (`handler.routeSpec`). */

// ---------------------------------------------------------------- run sizes

const positiveInt = z.coerce.number().int().positive();

/** Cases per route inside `npm test`; `FUZZ_RUNS=10000 npx jest test/fuzz` for the long run. */
export const DEFAULT_FUZZ_RUNS = 200;
export const FUZZ_RUNS = process.env.FUZZ_RUNS ? positiveInt.parse(process.env.FUZZ_RUNS) : DEFAULT_FUZZ_RUNS;
/** Replays a failing run: fast-check prints the seed (and path) of every counterexample. */
export const FUZZ_SEED = process.env.FUZZ_SEED ? z.coerce.number().int().parse(process.env.FUZZ_SEED) : undefined;

export function fuzzParameters<T>(overrides: fc.Parameters<T> = {}): fc.Parameters<T> {
  return { numRuns: FUZZ_RUNS, ...(FUZZ_SEED !== undefined && { seed: FUZZ_SEED }), ...overrides };
}

// ---------------------------------------------------------------- route specs

const REPO_ROOT = resolve(__dirname, '..', '..', '..');
const zodSchema = z.custom<z.ZodType>((value) => value instanceof z.ZodType, 'a zod schema');

/** What httpRoute publishes on a handler (shared/http/route.ts). */
const publishedHttpSpec = z.object({
  auth: z.boolean(),
  idempotent: z.boolean(),
  rateLimited: z.boolean().optional(),
  body: zodSchema.optional(),
  query: zodSchema.optional(),
  path: zodSchema.optional(),
});
export type HttpSpec = z.infer<typeof publishedHttpSpec>;

/** What wsRoute publishes on a handler (shared/ws/route.ts). */
const publishedWsSpec = z.object({ body: zodSchema });
export type WsSpec = z.infer<typeof publishedWsSpec>;

function handlerOf(file: string): unknown {
  // require, not import(): the handler file is named at run time and loaded synchronously, as Lambda does.
  const module: unknown = require(resolve(REPO_ROOT, file));
  return typeof module === 'object' && module !== null && 'handler' in module ? module.handler : undefined;
}

function routeSpecOf(file: string): unknown {
  const handler = handlerOf(file);
  return typeof handler === 'function' && 'routeSpec' in handler ? handler.routeSpec : undefined;
}

/** The route's published spec; a route whose handler was not built with httpRoute gets undefined (fuzzed blind). */
export function httpSpecOf(route: HttpRoute): HttpSpec | undefined {
  const raw = routeSpecOf(route.handler);
  return raw === undefined ? undefined : publishedHttpSpec.parse(raw);
}

export function wsSpecOf(route: WebSocketRoute): WsSpec | undefined {
  const raw = routeSpecOf(route.handler);
  return raw === undefined ? undefined : publishedWsSpec.parse(raw);
}

export function routeLabel(route: HttpRoute): string {
  return `${route.method} ${route.path}`;
}

export { HTTP_ROUTES, WEBSOCKET_ROUTES };

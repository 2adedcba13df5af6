/**
 * Arbitraries and a raw HTTP client for fuzzing every entry point of the route table. Inputs come
 * from the zod schemas each handler publishes (`handler.routeSpec`), through `z.toJSONSchema`, so a
 * route added to infra/routes.ts is fuzzed with no test change. Two families: "valid-looking"
 * values that satisfy the schema (they may legitimately succeed) and values mutated past it (wrong
 * types, huge, negative, fractional, unicode, lone surrogates, missing or extra fields, non-JSON,
 * oversized).
 *
 * specs.ts: run sizes and the routes' published schemas; arbitraries.ts: JSON Schema to values,
 * hostile values; http-cases.ts: whole HTTP requests; raw-http.ts: bytes on the wire;
 * checks.ts: the contract every answer keeps; websocket.ts: frames, upgrades, replies.
 */
export * from './arbitraries';
export * from './checks';
export * from './http-cases';
export * from './raw-http';
export * from './specs';
export * from './websocket';

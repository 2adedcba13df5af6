import fc from 'fast-check';
import { z } from 'zod';
import { request as httpRequest, Agent } from 'node:http';
import { resolve } from 'node:path';
import { createHmac } from 'node:crypto';
import WebSocket from 'ws';
import { HTTP_ROUTES, WEBSOCKET_ROUTES, type HttpRoute, type WebSocketRoute } from '../../infra/routes';
import { GIFTS, PACKAGE_COINS, packageId } from '../../shared/domain/catalog';
import { API_ERRORS } from '../../shared/http/openapi';
import { MAX_BODY_BYTES } from '../../shared/http/route';

/**
 * Arbitraries and a raw HTTP client for fuzzing every entry point of the route table (issue 8,
 * part 1). Inputs come from the zod schemas each handler publishes (`handler.routeSpec`),
 * through `z.toJSONSchema`, so a route added to infra/routes.ts is fuzzed with no test change.
 * Two families: "valid-looking" values that satisfy the schema (they may legitimately succeed)
 * and values mutated past it (wrong types, huge, negative, fractional, unicode, lone surrogates,
 * missing or extra fields, non-JSON, oversized).
 */

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

const REPO_ROOT = resolve(__dirname, '..', '..');
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

// ---------------------------------------------------------------- JSON Schema -> arbitraries

/** The subset of JSON Schema that z.toJSONSchema emits for our request schemas. */
interface JsonSchemaNode {
  type?: string | string[];
  properties?: Record<string, JsonSchemaNode>;
  required?: string[];
  additionalProperties?: boolean | JsonSchemaNode;
  items?: JsonSchemaNode;
  minItems?: number;
  maxItems?: number;
  anyOf?: JsonSchemaNode[];
  oneOf?: JsonSchemaNode[];
  allOf?: JsonSchemaNode[];
  enum?: unknown[];
  const?: unknown;
  pattern?: string;
  format?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  default?: unknown;
}

export function jsonSchemaOf(schema: z.ZodType): JsonSchemaNode {
  // The input side: what a client sends (before defaults and coercions); refinements and
  // transforms are not representable and are left to the server to check.
  return z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchemaNode;
}

/** Long enough to reach deep code, short enough to keep 200 cases per route quick. */
const VALID_STRING_LENGTH_CAP = 300;
const VALID_ARRAY_LENGTH_CAP = 5;

/** Real values for fields by name, so valid-looking input reaches past the lookups to the use case. */
const NAMED_HINTS: ReadonlyArray<[RegExp, readonly string[]]> = [
  [/^giftId$/i, GIFTS.map((gift) => gift.id)],
  [/^packageId$/i, PACKAGE_COINS.map((coins) => packageId(coins))],
  [/country/i, ['US', 'GB', 'DE', 'FR', 'KR', 'JP', 'us']],
  [/currency/i, ['USD', 'EUR', 'GBP']],
];
const BASE_HINTS: readonly string[] = NAMED_HINTS.flatMap(([, hints]) => hints);

export interface FuzzWorld {
  /** Ids that exist in the fuzzed stack (a live stream, seeded entries, users): valid-looking input uses them. */
  knownIds: string[];
  /** The same ids by the field that names them (`streamId`, `rechargeId`, `transactionId`). */
  idsByField: Record<string, string[]>;
}

/**
 * Ids that are also names on Object.prototype: a lookup in a plain object (`table[id]`) finds a
 * function instead of nothing. Valid under every id pattern, so they belong to valid-looking input.
 */
export const PROTOTYPE_KEYS = [
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'valueOf',
  'hasOwnProperty',
  '__defineGetter__',
  'isPrototypeOf',
];

function hintsFor(name: string | undefined, world: FuzzWorld): readonly string[] {
  if (name === undefined) return [...BASE_HINTS, ...world.knownIds];
  const named = [
    ...(world.idsByField[name] ?? []),
    ...NAMED_HINTS.filter(([pattern]) => pattern.test(name)).flatMap(([, hints]) => hints),
  ];
  return named.length > 0 ? named : [...BASE_HINTS, ...world.knownIds];
}

function stringArbitrary(node: JsonSchemaNode, world: FuzzWorld, name?: string): fc.Arbitrary<string> {
  if (node.enum) return fc.constantFrom(...node.enum.map(String));
  if (typeof node.const === 'string') return fc.constant(node.const);
  const minLength = node.minLength ?? 0;
  const maxLength = node.maxLength ?? Number.MAX_SAFE_INTEGER;
  const pattern = node.pattern === undefined ? undefined : new RegExp(node.pattern, 'u');
  const fits = (value: string) =>
    value.length >= minLength && value.length <= maxLength && (pattern === undefined || pattern.test(value));
  const cap = Math.min(maxLength, Math.max(minLength, VALID_STRING_LENGTH_CAP));
  let base: fc.Arbitrary<string>;
  switch (node.format) {
    case 'date':
      base = fc
        .date({ min: new Date('1900-01-01T00:00:00Z'), max: new Date('2100-12-31T00:00:00Z'), noInvalidDate: true })
        .map((date) => date.toISOString().slice(0, 10));
      break;
    case 'date-time':
      base = fc.date({ noInvalidDate: true }).map((date) => date.toISOString());
      break;
    case 'email':
      base = fc.emailAddress();
      break;
    case 'uri':
    case 'url':
      base = fc.webUrl();
      break;
    case 'uuid':
      base = fc.uuid();
      break;
    default:
      base = pattern
        ? fc.stringMatching(pattern).map((value) => value.slice(0, cap))
        : fc.oneof(
            fc.string({ minLength, maxLength: cap, unit: 'grapheme-ascii' }),
            fc.string({ minLength, maxLength: cap, unit: 'grapheme' }),
            // Any code point, lone surrogates, BOM and bidi controls included: valid for a free-text
            // schema, awkward for storage and for logs.
            fc.string({
              minLength,
              maxLength: cap,
              unit: fc.oneof(
                fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
                fc.constantFrom(...UNICODE_SPECIALS),
              ),
            }),
          );
  }
  const prototypeKeys = PROTOTYPE_KEYS.filter(fits);
  if (prototypeKeys.length > 0)
    base = fc.oneof({ arbitrary: base, weight: 9 }, { arbitrary: fc.constantFrom(...prototypeKeys), weight: 1 });
  const hints = hintsFor(name, world).filter(fits);
  // A field named for what it holds (giftId, streamId) mostly gets a real one: that is what reaches the use case.
  const named =
    name !== undefined && (world.idsByField[name] !== undefined || NAMED_HINTS.some(([pattern]) => pattern.test(name)));
  const arbitrary =
    hints.length > 0
      ? fc.oneof(
          { arbitrary: base, weight: named ? 1 : 3 },
          { arbitrary: fc.constantFrom(...hints), weight: named ? 3 : 2 },
        )
      : base;
  return arbitrary.filter(fits);
}

function integerArbitrary(node: JsonSchemaNode): fc.Arbitrary<number> {
  let min = node.minimum ?? Number.MIN_SAFE_INTEGER;
  let max = node.maximum ?? Number.MAX_SAFE_INTEGER;
  if (node.exclusiveMinimum !== undefined) min = Math.max(min, Math.floor(node.exclusiveMinimum) + 1);
  if (node.exclusiveMaximum !== undefined) max = Math.min(max, Math.ceil(node.exclusiveMaximum) - 1);
  min = Math.max(Math.ceil(min), Number.MIN_SAFE_INTEGER);
  max = Math.min(Math.floor(max), Number.MAX_SAFE_INTEGER);
  const wide = fc.bigInt({ min: BigInt(min), max: BigInt(max) }).map(Number);
  // Most real values are small: bias towards the bottom of the range, keep the edges.
  const small = fc.integer({ min: Math.max(min, -1000), max: Math.max(Math.max(min, -1000), Math.min(max, 1000)) });
  return fc.oneof(
    { arbitrary: small, weight: 4 },
    { arbitrary: wide, weight: 2 },
    { arbitrary: fc.constantFrom(min, max), weight: 1 },
  );
}

function numberArbitrary(node: JsonSchemaNode): fc.Arbitrary<number> {
  const min = node.minimum ?? node.exclusiveMinimum ?? -1e9;
  const max = node.maximum ?? node.exclusiveMaximum ?? 1e9;
  return fc
    .double({ min, max, noNaN: true, noDefaultInfinity: true })
    .filter(
      (value) =>
        (node.exclusiveMinimum === undefined || value > node.exclusiveMinimum) &&
        (node.exclusiveMaximum === undefined || value < node.exclusiveMaximum),
    );
}

/** Values that satisfy the schema's JSON Schema (refinements aside): they may well succeed. */
export function validLooking(node: JsonSchemaNode, world: FuzzWorld, name?: string): fc.Arbitrary<unknown> {
  if (node.const !== undefined) return fc.constant(node.const);
  if (node.enum) return fc.constantFrom(...node.enum);
  const alternatives = node.anyOf ?? node.oneOf;
  if (alternatives && alternatives.length > 0)
    return fc.oneof(...alternatives.map((alternative) => validLooking(alternative, world, name)));
  if (node.allOf && node.allOf.length > 0 && node.allOf[0]) return validLooking(node.allOf[0], world, name);
  if (Array.isArray(node.type))
    return fc.oneof(...node.type.map((type) => validLooking({ ...node, type }, world, name)));
  switch (node.type) {
    case 'string':
      return stringArbitrary(node, world, name);
    case 'integer':
      return integerArbitrary(node);
    case 'number':
      return numberArbitrary(node);
    case 'boolean':
      return fc.boolean();
    case 'null':
      return fc.constant(null);
    case 'array':
      return fc.array(node.items ? validLooking(node.items, world) : fc.jsonValue({ maxDepth: 1 }), {
        minLength: node.minItems ?? 0,
        maxLength: Math.max(
          node.minItems ?? 0,
          Math.min(node.maxItems ?? VALID_ARRAY_LENGTH_CAP, VALID_ARRAY_LENGTH_CAP),
        ),
      });
    case 'object': {
      const properties = node.properties ?? {};
      const model: Record<string, fc.Arbitrary<unknown>> = {};
      for (const [property, child] of Object.entries(properties))
        model[property] = validLooking(child, world, property);
      const requiredKeys = (node.required ?? []).filter((name) => name in properties);
      return fc.record(model, { requiredKeys });
    }
    default:
      // `unknown`, `any`, or not representable: anything JSON.
      return fc.jsonValue({ maxDepth: 2 });
  }
}

// ---------------------------------------------------------------- hostile values

/**
 * A long run of one unit, expanded only when serialized, so a failing case prints as
 * `"x"×100000` instead of flooding the report.
 */
export class Repeated {
  constructor(
    readonly unit: string,
    readonly times: number,
  ) {}
  toString(): string {
    return this.unit.repeat(this.times);
  }
  toJSON(): string {
    return this.toString();
  }
  [fc.toStringMethod](): string {
    return `${JSON.stringify(this.unit)}×${this.times}`;
  }
}

/**
 * JSON text spliced verbatim into a body or frame: number tokens JSON.stringify cannot write,
 * nesting too deep to build as values. Printed short in a failing case.
 */
export class RawJson {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
  /** A marker that toJsonText swaps for the text itself. */
  toJSON(): string {
    return `${RAW_MARKER}${Buffer.from(this.text).toString('base64')}${RAW_MARKER}`;
  }
  [fc.toStringMethod](): string {
    return `RawJson(${this.text.length > 40 ? `${this.text.slice(0, 20)}…${this.text.length} chars` : this.text})`;
  }
}
const RAW_MARKER = '\u0001RAW\u0001';

/** JSON text of a value, with every RawJson spliced in verbatim. */
export function toJsonText(value: unknown): string {
  return JSON.stringify(value).replace(/"\\u0001RAW\\u0001([A-Za-z0-9+/=]*)\\u0001RAW\\u0001"/g, (_, base64: string) =>
    Buffer.from(base64, 'base64').toString('utf8'),
  );
}

/** Lone surrogates, BOM, bidi overrides, NUL, combining marks, astral characters. */
const UNICODE_SPECIALS = [
  '\uD800',
  '\uDFFF',
  'a\uD83D',
  '\uDE00b',
  '\uFEFF',
  '\u202E',
  '\u0000',
  'e\u0301',
  '😀',
  '𝕏',
  '\u2028',
  '\u00A0',
  'İ',
  'ß',
];

export const hostileString: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    '',
    ' ',
    'null',
    'undefined',
    'NaN',
    '-1',
    '0.5',
    '1e309',
    '0x10',
    'true',
    '[]',
    '{}',
    '__proto__',
    'constructor',
    '<script>alert(1)</script>',
    "' OR '1'='1",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a template-injection probe, sent as a literal
    '${7*7}',
    '{{7*7}}',
    '../../etc/passwd',
    'USER#victim',
    'WALLET',
    '#',
    'a#b',
    'TX#',
    '%00',
    '%',
    '\\',
    '"',
    '\r\n',
    '\t',
    ...UNICODE_SPECIALS,
  ),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.array(fc.constantFrom(...UNICODE_SPECIALS), { minLength: 1, maxLength: 20 }).map((parts) => parts.join('')),
  // Huge: past every length limit, one of them past a DynamoDB key's 2 KB and item's 400 KB.
  fc
    .constantFrom(129, 256, 2049, 10_000, 100_000)
    .chain((times) =>
      fc.constantFrom(
        new Repeated('x', times),
        new Repeated('€', times),
        new Repeated('\uD800', Math.min(times, 10_000)),
      ),
    ),
);

export const hostileNumber: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    0,
    -0,
    -1,
    -2000,
    0.5,
    -0.5,
    1.5,
    0.1,
    99.99,
    1e-7,
    Number.MIN_VALUE,
    1e21,
    1e308,
    -1e308,
    2 ** 31,
    2 ** 32,
    2 ** 53,
    Number.MAX_SAFE_INTEGER,
    Number.MAX_SAFE_INTEGER + 2,
    -Number.MAX_SAFE_INTEGER,
    2 ** 63,
  ),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.integer(),
);

/**
 * Raw JSON number tokens JSON.stringify cannot write: past a double (Infinity after parsing),
 * past a safe integer, negative zero, exponents, integers written as decimals.
 */
export const RAW_NUMBER_TOKENS = [
  '1e400',
  '-1e400',
  '123456789012345678901234567890',
  '-0',
  '1.0',
  '2e3',
  '9007199254740993',
  '0.0000001',
  '1E2',
  '-9999999999999999999',
].map((token) => new RawJson(token));

export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: hostileString, weight: 4 },
  { arbitrary: hostileNumber, weight: 4 },
  { arbitrary: fc.constantFrom<unknown>(null, true, false, [], {}, [null], { '': '' }, ['a', 1]), weight: 2 },
  { arbitrary: fc.jsonValue({ maxDepth: 3 }), weight: 2 },
  { arbitrary: fc.constantFrom(...RAW_NUMBER_TOKENS), weight: 1 },
  // Deep nesting: JSON.parse copes; code that walks it recursively might not.
  {
    arbitrary: fc
      .constantFrom(50, 1_000, 5_000)
      .map(
        (depth) => new RawJson(`${'['.repeat(depth)}${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}${']'.repeat(depth)}`),
      ),
    weight: 1,
  },
  {
    arbitrary: fc.constant(JSON.parse('{"__proto__":{"isAdmin":true},"constructor":{"prototype":{"x":1}}}') as unknown),
    weight: 1,
  },
);

/** Values mutated past the schema: wrong types, out of range, missing, extra, nested garbage. */
export function pastSchema(node: JsonSchemaNode, world: FuzzWorld): fc.Arbitrary<unknown> {
  const replaced: Array<fc.Arbitrary<unknown>> = [hostileValue];
  const alternatives = node.anyOf ?? node.oneOf;
  if (alternatives && alternatives.length > 0)
    replaced.push(...alternatives.map((alternative) => pastSchema(alternative, world)));
  const type = Array.isArray(node.type) ? node.type[0] : node.type;
  switch (type) {
    case 'string': {
      const edges: unknown[] = [];
      if (node.maxLength !== undefined)
        edges.push(new Repeated('x', node.maxLength + 1), new Repeated('é', node.maxLength + 1));
      if (node.minLength !== undefined && node.minLength > 0) edges.push('x'.repeat(node.minLength - 1));
      if (node.enum)
        for (const value of node.enum)
          edges.push(
            String(value).toLowerCase(),
            ` ${String(value)}`,
            `${String(value)}\u0000`,
            String(value).toUpperCase() + 'X',
          );
      edges.push(123, ['a'], { value: 'a' }, null, true);
      replaced.push(fc.constantFrom(...edges));
      break;
    }
    case 'integer':
    case 'number': {
      const edges: unknown[] = [];
      if (node.minimum !== undefined) edges.push(node.minimum - 1, node.minimum - 0.5, -node.minimum - 1);
      if (node.exclusiveMinimum !== undefined) edges.push(node.exclusiveMinimum, node.exclusiveMinimum - 1);
      if (node.maximum !== undefined) edges.push(node.maximum + 1, node.maximum + 0.5, node.maximum * 10);
      edges.push(1.5, -1, -0.25, '1', '10', '', true, null, [1], { amount: 1 }, ...RAW_NUMBER_TOKENS);
      replaced.push(fc.constantFrom(...edges));
      break;
    }
    case 'boolean':
      replaced.push(fc.constantFrom<unknown>('true', 'false', 1, 0, null, 'yes', [true]));
      break;
    case 'object': {
      const properties = Object.entries(node.properties ?? {});
      if (properties.length > 0) {
        const valid = validLooking(node, world);
        // One field dropped, or one field replaced by something past its own schema.
        replaced.push(
          fc.tuple(valid, fc.constantFrom(...properties.map(([name]) => name))).map(([value, name]) => {
            const copy = { ...(value as Record<string, unknown>) };
            delete copy[name];
            return copy;
          }),
          fc
            .constantFrom(...properties)
            .chain(([name, child]) => fc.tuple(valid, fc.constant(name), pastSchema(child, world)))
            .map(([value, name, bad]) => ({ ...(value as Record<string, unknown>), [name]: bad })),
        );
      }
      // Extra and prototype-polluting keys on an otherwise valid object.
      replaced.push(
        validLooking(node, world).map((value) => ({
          ...(typeof value === 'object' && value !== null ? value : {}),
          extra: 'field',
          ...(JSON.parse('{"__proto__":{"polluted":true}}') as object),
        })),
        fc.constantFrom<unknown>([], 'object', 0, [{}]),
      );
      break;
    }
    default:
      break;
  }
  return fc.oneof(...replaced);
}

// ---------------------------------------------------------------- HTTP cases

/** A request body as the fuzzer describes it; oversized bodies are built only when sent. */
export type BodyCase =
  | { kind: 'none' }
  | { kind: 'json'; valid: boolean; value: unknown }
  | { kind: 'text'; text: string }
  | { kind: 'bytes'; bytes: Uint8Array }
  | { kind: 'oversized'; bytes: number; shape: 'padded-json' | 'string' | 'multibyte' };

export interface HttpCase {
  /** Path parameter values, already percent-encoded (or deliberately not) for the wire. */
  pathSegments: Record<string, string>;
  /** The raw query string, without '?'. */
  query: string;
  body: BodyCase;
  /** Header values; an array sends the header once per value. */
  headers: Record<string, string | string[]>;
  /** The caller's label (for the report; the token itself stays out of the printed case). */
  caller: string;
}

/** Each byte of the UTF-8 percent-encoded, except the unreserved ones. Lone surrogates become U+FFFD. */
function percentEncode(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const char = String.fromCharCode(byte);
    out += /[A-Za-z0-9\-._~]/.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Raw path segments: traversal, encoded slashes, broken escapes, encoded surrogates, overlong UTF-8. */
const HOSTILE_SEGMENTS = [
  '..',
  '.',
  '%2E%2E',
  '%2F',
  'a%2Fb',
  '%2F..%2F..%2Fwallet',
  '%5C',
  '%',
  '%zz',
  '%E0%A4%A',
  '%ED%A0%80',
  '%ED%BF%BF',
  '%C0%AF',
  '%00',
  '%FF%FE',
  '%F0%9F%98%80',
  '%20',
  '%0A',
  '%0D%0A',
  'USER%23victim',
  '%23',
  '~',
  '%C3%BC',
  'a/b',
  '',
  '%252F',
  '*',
  "'",
  '%27%20OR%201%3D1',
  ...PROTOTYPE_KEYS,
];

/** Node's HTTP server refuses request heads over 16 KB: keep a hostile path under it. */
const MAX_HOSTILE_SEGMENT_BYTES = 2_000;

function segmentArbitrary(node: JsonSchemaNode | undefined, world: FuzzWorld, name: string): fc.Arbitrary<string> {
  const valid = node ? validLooking(node, world, name) : fc.stringMatching(/^[A-Za-z0-9_-]{1,40}$/);
  return fc.oneof(
    { arbitrary: valid.map((value) => percentEncode(String(value))), weight: 5 },
    { arbitrary: fc.constantFrom(...HOSTILE_SEGMENTS), weight: 3 },
    {
      arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }).map(percentEncode),
      weight: 2,
    },
    { arbitrary: fc.constantFrom(129, 1_000, MAX_HOSTILE_SEGMENT_BYTES).map((times) => 'a'.repeat(times)), weight: 1 },
  );
}

function queryValueText(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'object' && !(value instanceof Repeated) && !(value instanceof RawJson))
    return toJsonText(value);
  return String(value);
}

/**
 * Hostile sizes stay under Node's 16 KB limit on a request head (path, query and headers
 * together), which refuses bigger ones with a bare 431 before the gateway sees them.
 */
const MAX_QUERY_CHARS = 3_000;

function encodeQuery(entries: Array<[string, unknown]>): string {
  return entries
    .map(([key, value]) => `${percentEncode(key)}=${percentEncode(queryValueText(value).slice(0, MAX_QUERY_CHARS))}`)
    .join('&')
    .slice(0, MAX_QUERY_CHARS);
}

function queryArbitrary(node: JsonSchemaNode | undefined, world: FuzzWorld): fc.Arbitrary<string> {
  const encode = encodeQuery;
  const hostileRaw = fc.constantFrom(
    'limit=%',
    'cursor=%zz',
    'limit=1&limit=2',
    'limit=&cursor=',
    '&&&',
    '=',
    'a=%ED%A0%80',
    'country=U%00S',
    '%zz=1',
    'limit=1e2',
    'limit=0x10',
    'limit=-0',
    'limit=%2B5',
  );
  if (!node?.properties) {
    return fc.oneof(
      { arbitrary: fc.constant(''), weight: 6 },
      { arbitrary: hostileRaw, weight: 1 },
      {
        arbitrary: fc
          .dictionary(fc.string({ maxLength: 8 }), hostileString, { maxKeys: 3 })
          .map((dictionary) => encode(Object.entries(dictionary))),
        weight: 1,
      },
    );
  }
  const valid = validLooking(node, world).map((value) =>
    encode(Object.entries((value ?? {}) as Record<string, unknown>)),
  );
  const mutated = pastSchema(node, world).map((value) =>
    typeof value === 'object' && value !== null && !Array.isArray(value)
      ? encode(Object.entries(value))
      : encode([['limit', value]]),
  );
  return fc.oneof(
    { arbitrary: valid, weight: 4 },
    { arbitrary: mutated, weight: 3 },
    { arbitrary: hostileRaw, weight: 1 },
    { arbitrary: fc.constant(''), weight: 1 },
  );
}

const NOT_JSON = [
  '{',
  '}',
  '[',
  '{"a":}',
  '{"a":1,}',
  "{'a':1}",
  'NaN',
  'undefined',
  'Infinity',
  '-',
  '\uFEFF{}',
  '{"a":1}{"b":2}',
  'null',
  'true',
  '1',
  '""',
  '[]',
  '{"a":"\\u12"}',
  '{"a":"\\uD800"}',
  'a=1&b=2',
  '<xml/>',
];

function bodyArbitrary(spec: HttpSpec | undefined, world: FuzzWorld): fc.Arbitrary<BodyCase> {
  const node = spec?.body ? jsonSchemaOf(spec.body) : undefined;
  const noise: Array<fc.WeightedArbitrary<BodyCase>> = [
    { arbitrary: fc.constantFrom(...NOT_JSON).map((text): BodyCase => ({ kind: 'text', text })), weight: 2 },
    {
      arbitrary: fc.string({ unit: 'binary', maxLength: 200 }).map((text): BodyCase => ({ kind: 'text', text })),
      weight: 1,
    },
    { arbitrary: fc.uint8Array({ maxLength: 200 }).map((bytes): BodyCase => ({ kind: 'bytes', bytes })), weight: 1 },
    { arbitrary: fc.constant<BodyCase>({ kind: 'none' }), weight: 1 },
    { arbitrary: fc.constant<BodyCase>({ kind: 'text', text: '   ' }), weight: 1 },
    {
      // Just over the limit, in three shapes: whitespace around valid JSON, one long string, multi-byte characters.
      arbitrary: fc
        .record({
          bytes: fc.integer({ min: MAX_BODY_BYTES + 1, max: MAX_BODY_BYTES + 64 * 1024 }),
          shape: fc.constantFrom<'padded-json' | 'string' | 'multibyte'>('padded-json', 'string', 'multibyte'),
        })
        .map((oversized): BodyCase => ({ kind: 'oversized', ...oversized })),
      weight: 1,
    },
    { arbitrary: hostileValue.map((value): BodyCase => ({ kind: 'json', valid: false, value })), weight: 2 },
  ];
  if (!node) return fc.oneof({ arbitrary: fc.constant<BodyCase>({ kind: 'none' }), weight: 8 }, ...noise);
  return fc.oneof(
    {
      arbitrary: validLooking(node, world).map((value): BodyCase => ({ kind: 'json', valid: true, value })),
      weight: 8,
    },
    { arbitrary: pastSchema(node, world).map((value): BodyCase => ({ kind: 'json', valid: false, value })), weight: 8 },
    ...noise,
  );
}

export interface Caller {
  label: string;
  token: string;
}

/** Authorization variants: the caller's token mostly, and every way to get it wrong. */
interface AuthorizationCase {
  caller: string;
  value: string | string[] | undefined;
  valid: boolean | 'either';
}

function authorizationArbitrary(callers: Caller[]): fc.Arbitrary<AuthorizationCase> {
  const caller = fc.constantFrom(...callers);
  return fc.oneof(
    {
      arbitrary: caller.map(
        (chosen): AuthorizationCase => ({ caller: chosen.label, value: `Bearer ${chosen.token}`, valid: true }),
      ),
      weight: 12,
    },
    {
      arbitrary: caller.map(
        (chosen): AuthorizationCase => ({ caller: chosen.label, value: `bearer ${chosen.token}`, valid: true }),
      ),
      weight: 1,
    },
    {
      arbitrary: fc
        .constantFrom<string | undefined>(
          undefined,
          '',
          'Bearer',
          'Bearer ',
          'Basic dXNlcjpwYXNz',
          'Bearer a.b.c',
          'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.',
          'Bearer \u00ff\u00fe',
          `Bearer ${'A'.repeat(4000)}`,
          'Token x',
        )
        .map((value): AuthorizationCase => ({ caller: 'anonymous', value, valid: false })),
      weight: 3,
    },
    // A tampered token: one character of the signature changed.
    {
      arbitrary: fc.tuple(caller, fc.nat()).map(
        ([chosen, at]): AuthorizationCase => ({
          caller: `${chosen.label} (tampered)`,
          value: `Bearer ${tamper(chosen.token, at)}`,
          valid: false,
        }),
      ),
      weight: 2,
    },
    // Duplicated header: a valid token and garbage, in both orders (which one counts is the server's choice).
    {
      arbitrary: caller.map(
        (chosen): AuthorizationCase => ({
          caller: `${chosen.label} (duplicated)`,
          value: [`Bearer ${chosen.token}`, 'Bearer garbage'],
          valid: 'either',
        }),
      ),
      weight: 1,
    },
    {
      arbitrary: caller.map(
        (chosen): AuthorizationCase => ({
          caller: `${chosen.label} (duplicated)`,
          value: ['Bearer garbage', `Bearer ${chosen.token}`],
          valid: 'either',
        }),
      ),
      weight: 1,
    },
  );
}

/**
 * One character of the signature changed. Not the last one: of its 6 bits only 2 carry data
 * (an ES256 signature is 64 bytes in 86 characters), so changing it may change nothing.
 */
function tamper(token: string, at: number): string {
  const index = token.length - 2 - (at % 20);
  const original = token[index] ?? 'A';
  return `${token.slice(0, index)}${original === 'A' ? 'B' : 'A'}${token.slice(index + 1)}`;
}

/** Idempotency-Key variants: valid mostly; missing, empty, too long, non-ASCII, control characters, duplicated. */
const idempotencyKeyArbitrary: fc.Arbitrary<string | string[] | undefined> = fc.oneof(
  {
    arbitrary: fc
      .string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 255 })
      .filter((key) => /^[\x20-\x7E]+$/.test(key) && key.trim() === key),
    weight: 8,
  },
  { arbitrary: fc.uuid(), weight: 4 },
  {
    arbitrary: fc.constantFrom<string | undefined>(
      undefined,
      '',
      ' ',
      'k'.repeat(256),
      'k'.repeat(1000),
      'caf\u00e9',
      '\u00ff',
      'a\tb',
      'a,b',
    ),
    weight: 4,
  },
  { arbitrary: fc.tuple(fc.uuid(), fc.uuid()).map(([first, second]) => [first, second]), weight: 1 },
);

const contentTypeArbitrary: fc.Arbitrary<string | string[] | undefined> = fc.oneof(
  { arbitrary: fc.constant('application/json'), weight: 8 },
  {
    arbitrary: fc.constantFrom<string | string[] | undefined>(
      undefined,
      'text/plain',
      'application/octet-stream',
      'application/json; charset=utf-16',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'garbage',
      '',
      ['application/json', 'text/plain'],
    ),
    weight: 3,
  },
);

/** Stripe-Signature variants an attacker can send: none of them is signed with the webhook secret. */
export type StripeSignatureCase =
  | { kind: 'literal'; value: string | string[] | undefined }
  | { kind: 'wrong-secret'; secret: string; ageSeconds: number }
  | { kind: 'other-body' };

function stripeSignatureArbitrary(): fc.Arbitrary<StripeSignatureCase> {
  return fc.oneof(
    fc
      .constantFrom<string | string[] | undefined>(
        undefined,
        '',
        'garbage',
        't=1,v1=00',
        't=,v1=',
        'v1=abc',
        't=abc,v1=def',
        't=1,v1=',
        'v1=',
        't=1',
        `t=${'9'.repeat(400)},v1=aa`,
        't=1,v0=00',
        ['t=1,v1=00', 't=2,v1=11'],
      )
      .map((value): StripeSignatureCase => ({ kind: 'literal', value })),
    // Well-formed, signed with a secret the server does not have, now or long ago.
    fc
      .record({ secret: fc.string({ minLength: 1, maxLength: 40 }), ageSeconds: fc.constantFrom(0, 301, 86_400) })
      .map((signed): StripeSignatureCase => ({ kind: 'wrong-secret', ...signed })),
    fc.constant<StripeSignatureCase>({ kind: 'other-body' }),
  );
}

/** Stripe's scheme: v1 = HMAC-SHA256(secret, `${t}.${body}`), hex. */
export function stripeSignature(
  secret: string,
  body: Buffer,
  timestampSeconds = Math.floor(Date.now() / 1000),
): string {
  const signature = createHmac('sha256', secret).update(`${timestampSeconds}.`).update(body).digest('hex');
  return `t=${timestampSeconds},v1=${signature}`;
}

function signatureHeader(signature: StripeSignatureCase, body: Buffer): string | string[] | undefined {
  const now = Math.floor(Date.now() / 1000);
  switch (signature.kind) {
    case 'literal':
      return signature.value;
    case 'wrong-secret':
      return stripeSignature(`whsec_${signature.secret}`, body, now - signature.ageSeconds);
    case 'other-body':
      return stripeSignature('whsec_forged', Buffer.concat([body, Buffer.from(' ')]), now);
  }
}

export interface HttpCaseOptions {
  route: HttpRoute;
  spec: HttpSpec | undefined;
  callers: Caller[];
  world: FuzzWorld;
}

export interface FuzzedHttpCase extends HttpCase {
  /** The webhook's signature, computed over the body when it is sent. */
  stripeSignature?: StripeSignatureCase;
  /** Whether the Authorization header carries a valid token: false must be 401 on a JWT route. */
  tokenValid: boolean | 'either';
}

export function httpCaseArbitrary(options: HttpCaseOptions): fc.Arbitrary<FuzzedHttpCase> {
  const { route, spec, callers, world } = options;
  const pathNode = spec?.path ? jsonSchemaOf(spec.path) : undefined;
  const parameterNames = [...route.path.matchAll(/\{([A-Za-z0-9_]+)\}/g)].map((match) => match[1] ?? '');
  const segments: Record<string, fc.Arbitrary<string>> = {};
  for (const name of parameterNames) segments[name] = segmentArbitrary(pathNode?.properties?.[name], world, name);
  const queryNode = spec?.query ? jsonSchemaOf(spec.query) : undefined;
  const needsAuth = route.auth === 'jwt';
  const authorization = needsAuth
    ? authorizationArbitrary(callers)
    : fc.oneof(
        {
          arbitrary: fc.constant<AuthorizationCase>({ caller: 'anonymous', value: undefined, valid: false }),
          weight: 4,
        },
        { arbitrary: authorizationArbitrary(callers), weight: 1 },
      );
  // Every POST gets the key variants (the contract's idempotent POSTs must refuse bad ones; the others ignore it).
  const idempotencyKey = route.method === 'POST' ? idempotencyKeyArbitrary : fc.constant(undefined);
  const extraHeaders = fc.dictionary(
    fc.constantFrom(
      'x-forwarded-for',
      'x-amzn-trace-id',
      'accept',
      'origin',
      'cookie',
      'x-api-key',
      'user-agent',
      'accept-encoding',
      'x-correlation-id',
    ),
    fc.string({ unit: 'binary-ascii', maxLength: 60 }).map((value) => value.replace(/[^\t\x20-\x7E]/g, '')),
    { maxKeys: 2 },
  );
  const stripeSignature = route.path === '/v1/webhooks/stripe' ? stripeSignatureArbitrary() : fc.constant(undefined);
  // Everything mutated at once, or everything valid-looking: the second reaches the use cases
  // (a hostile header alone stops a request at the first check).
  const mixed = fc.record({
    pathSegments: fc.record(segments),
    query: queryArbitrary(queryNode, world),
    body: bodyArbitrary(spec, world),
    authorization,
    idempotencyKey,
    contentType: contentTypeArbitrary,
    extraHeaders,
    stripeSignature,
  });
  const validSegments: Record<string, fc.Arbitrary<string>> = {};
  for (const name of parameterNames) {
    const node = pathNode?.properties?.[name];
    validSegments[name] = (node ? validLooking(node, world, name) : fc.constantFrom(...hintsFor(name, world))).map(
      (value) => percentEncode(String(value)),
    );
  }
  const bodyNode = spec?.body ? jsonSchemaOf(spec.body) : undefined;
  const validLookingCase = fc.record({
    pathSegments: fc.record(validSegments),
    query: queryNode?.properties
      ? validLooking(queryNode, world).map((value) =>
          encodeQuery(Object.entries((value ?? {}) as Record<string, unknown>)),
        )
      : fc.constant(''),
    body: bodyNode
      ? validLooking(bodyNode, world).map((value): BodyCase => ({ kind: 'json', valid: true, value }))
      : fc.constant<BodyCase>({ kind: 'none' }),
    authorization: needsAuth
      ? fc
          .constantFrom(...callers)
          .map((chosen): AuthorizationCase => ({ caller: chosen.label, value: `Bearer ${chosen.token}`, valid: true }))
      : fc.constant<AuthorizationCase>({ caller: 'anonymous', value: undefined, valid: false }),
    idempotencyKey:
      route.method === 'POST' ? fc.uuid().map((key): string | string[] | undefined => key) : fc.constant(undefined),
    contentType: fc.constant<string | string[] | undefined>('application/json'),
    extraHeaders: fc.constant({}),
    stripeSignature,
  });
  return fc
    .oneof({ arbitrary: validLookingCase, weight: 2 }, { arbitrary: mixed, weight: 3 })
    .map((parts): FuzzedHttpCase => {
      const headers: Record<string, string | string[]> = { ...parts.extraHeaders };
      if (parts.authorization.value !== undefined) headers.authorization = parts.authorization.value;
      if (parts.idempotencyKey !== undefined) headers['idempotency-key'] = parts.idempotencyKey;
      if (parts.contentType !== undefined && parts.body.kind !== 'none') headers['content-type'] = parts.contentType;
      return {
        pathSegments: parts.pathSegments,
        query: parts.query,
        body: parts.body,
        headers,
        caller: parts.authorization.caller,
        tokenValid: parts.authorization.valid,
        ...(parts.stripeSignature && { stripeSignature: parts.stripeSignature }),
      };
    });
}

export function bodyBytes(body: BodyCase): Buffer | undefined {
  switch (body.kind) {
    case 'none':
      return undefined;
    case 'json':
      return Buffer.from(toJsonText(body.value), 'utf8');
    case 'text':
      return Buffer.from(body.text, 'utf8');
    case 'bytes':
      return Buffer.from(body.bytes);
    case 'oversized': {
      if (body.shape === 'padded-json')
        return Buffer.concat([Buffer.from('{"a":1}'), Buffer.alloc(body.bytes - 7, 0x20)]);
      if (body.shape === 'string') return Buffer.from(`"${'x'.repeat(body.bytes - 2)}"`);
      // Fewer characters than bytes: a limit counted in characters would let it through.
      const euros = Math.ceil((body.bytes - 2) / 3);
      return Buffer.from(`"${'€'.repeat(euros)}"`);
    }
  }
}

export interface RawRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[]>;
  body?: Buffer;
}

export function materialize(route: HttpRoute, fuzzed: FuzzedHttpCase): RawRequest {
  const path = route.path.replace(/\{([A-Za-z0-9_]+)\}/g, (_, name: string) => fuzzed.pathSegments[name] ?? '');
  const body = bodyBytes(fuzzed.body);
  const headers = { ...fuzzed.headers };
  if (fuzzed.stripeSignature) {
    const signature = signatureHeader(fuzzed.stripeSignature, body ?? Buffer.alloc(0));
    if (signature !== undefined) headers['stripe-signature'] = signature;
  }
  return {
    method: route.method,
    path: `${path}${fuzzed.query ? `?${fuzzed.query}` : ''}`,
    headers,
    ...(body && { body }),
  };
}

// ---------------------------------------------------------------- raw HTTP client

export interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** Keep-alive sockets: thousands of requests without thousands of TCP handshakes. */
const agent = new Agent({ keepAlive: true, maxSockets: 64 });

/**
 * Sends exactly what it is given: node:http, not fetch, so headers can repeat, the path is not
 * normalized, and the body bytes are not re-encoded.
 */
export function sendRaw(baseUrl: string, raw: RawRequest, timeoutMs = 30_000): Promise<RawAnswer> {
  const url = new URL(baseUrl);
  return new Promise((resolvePromise, reject) => {
    // An explicit length: node:http sends a GET body without one, which the server reads as the next request.
    const headers = raw.body ? { ...raw.headers, 'content-length': String(raw.body.length) } : raw.headers;
    const request = httpRequest(
      { host: url.hostname, port: url.port, method: raw.method, path: raw.path, headers, agent, timeout: timeoutMs },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolvePromise({
            status: response.statusCode ?? 0,
            headers: response.headers,
            text: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        response.on('error', reject);
      },
    );
    request.on('timeout', () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    request.on('error', reject);
    request.end(raw.body);
  });
}

export function closeFuzzAgent(): void {
  agent.destroy();
}

// ---------------------------------------------------------------- contract checks

const KNOWN_CODES = new Map(API_ERRORS.map((error) => [error.code, error.status]));

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
 * `{ error: { code, message, details? } }` with a code of API.md's table at its status. Throws
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

// ---------------------------------------------------------------- WebSocket frames

const WS_NOT_JSON = [
  '',
  ' ',
  '{',
  'ping',
  'null',
  '[]',
  '"ping"',
  '{"action":}',
  '\uFEFF{"action":"ping"}',
  '{"action":"ping"',
  'undefined',
];

export type FrameCase =
  | { kind: 'text'; text: string }
  | { kind: 'json'; value: unknown }
  | { kind: 'binary'; bytes: Uint8Array }
  | { kind: 'large'; bytes: number };

/** The gateway refuses frames over 128 KB by closing; the routes answer frames over 32 KB with an error. */
export const WS_LARGE_FRAME_BYTES = { min: 32 * 1024 + 1, max: 120 * 1024 };

export function frameArbitrary(
  route: WebSocketRoute,
  spec: WsSpec | undefined,
  world: FuzzWorld,
): fc.Arbitrary<FrameCase> {
  const action = route.routeKey.startsWith('$') ? undefined : route.routeKey;
  const node = spec
    ? jsonSchemaOf(spec.body)
    : { type: 'object', properties: action ? { action: { const: action } } : {}, required: action ? ['action'] : [] };
  const known = WEBSOCKET_ROUTES.map((candidate) => candidate.routeKey);
  const json = (arbitrary: fc.Arbitrary<unknown>) => arbitrary.map((value): FrameCase => ({ kind: 'json', value }));
  const withAction = (arbitrary: fc.Arbitrary<unknown>) =>
    arbitrary.map((value) =>
      action && typeof value === 'object' && value !== null && !Array.isArray(value) ? { ...value, action } : value,
    );
  return fc.oneof(
    { arbitrary: json(validLooking(node, world)), weight: 6 },
    // Past the schema but still routed here (the action kept), and past it entirely.
    { arbitrary: json(withAction(pastSchema(node, world))), weight: 6 },
    { arbitrary: json(pastSchema(node, world)), weight: 2 },
    {
      arbitrary: json(
        fc.record({
          action: fc.oneof(
            fc.constantFrom<unknown>(
              ...known,
              'PING',
              'sendgift',
              '',
              null,
              1,
              ['ping'],
              { action: 'ping' },
              '$default',
              '__proto__',
            ),
            hostileString,
          ),
        }),
      ),
      weight: 2,
    },
    { arbitrary: fc.constantFrom(...WS_NOT_JSON).map((text): FrameCase => ({ kind: 'text', text })), weight: 1 },
    {
      arbitrary: fc.string({ unit: 'binary', maxLength: 100 }).map((text): FrameCase => ({ kind: 'text', text })),
      weight: 1,
    },
    {
      arbitrary: fc.uint8Array({ minLength: 1, maxLength: 100 }).map((bytes): FrameCase => ({ kind: 'binary', bytes })),
      weight: 1,
    },
    { arbitrary: fc.integer(WS_LARGE_FRAME_BYTES).map((bytes): FrameCase => ({ kind: 'large', bytes })), weight: 1 },
  );
}

export function frameData(frame: FrameCase): { data: string | Buffer; binary: boolean } {
  switch (frame.kind) {
    case 'text':
      return { data: frame.text, binary: false };
    case 'json':
      return { data: toJsonText(frame.value), binary: false };
    case 'binary':
      return { data: Buffer.from(frame.bytes), binary: true };
    case 'large':
      return {
        data: JSON.stringify({ action: 'ping', requestId: 'large', pad: 'x'.repeat(frame.bytes) }),
        binary: false,
      };
  }
}

/** The requestId a reply to this frame must echo (API.md: "with the requestId when there is one"). */
export function expectedRequestId(frame: FrameCase): string | undefined {
  if (frame.kind === 'large') return 'large';
  if (frame.kind !== 'json') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(frameData(frame).data.toString());
  } catch {
    return undefined;
  }
  const parsed = z.object({ requestId: z.string().max(255) }).safeParse(value);
  return parsed.success ? parsed.data.requestId : undefined;
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

/** Server-to-client pushes that are not replies (API.md, WebSocket). */
export const WS_PUSH_TYPES = new Set(['gift', 'wallet', 'streamEnded', 'batch']);

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

/** A socket whose messages are read one reply at a time. */
export class ReplyQueue {
  private readonly replies: string[] = [];
  private waiter: (() => void) | undefined;
  closed: { code: number } | undefined;

  constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => {
      const text = String(data);
      try {
        const type = (JSON.parse(text) as { type?: unknown } | null)?.type;
        if (typeof type === 'string' && WS_PUSH_TYPES.has(type)) return;
      } catch {
        /* not JSON: a reply to check */
      }
      this.replies.push(text);
      this.waiter?.();
    });
    socket.on('close', (code) => {
      this.closed = { code };
      this.waiter?.();
    });
  }

  static open(url: string): Promise<ReplyQueue> {
    return new Promise((resolvePromise, reject) => {
      const socket = new WebSocket(url);
      socket.once('open', () => resolvePromise(new ReplyQueue(socket)));
      socket.once('error', reject);
      socket.once('unexpected-response', (_request, response) =>
        reject(new Error(`upgrade answered ${response.statusCode ?? 0}`)),
      );
    });
  }

  async next(timeoutMs: number): Promise<string | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (this.replies.length === 0 && !this.closed && Date.now() < deadline) {
      await new Promise<void>((wake) => {
        const timer = setTimeout(wake, deadline - Date.now());
        this.waiter = () => {
          clearTimeout(timer);
          wake();
        };
      });
      this.waiter = undefined;
    }
    return this.replies.shift();
  }

  close(): Promise<void> {
    return new Promise((resolvePromise) => {
      if (this.socket.readyState === WebSocket.CLOSED) return resolvePromise();
      this.socket.once('close', () => resolvePromise());
      this.socket.close();
    });
  }
}

/** Query strings for the upgrade: the token and streamId in every shape. */
export function upgradeQueryArbitrary(
  callers: Caller[],
  world: FuzzWorld,
): fc.Arbitrary<{ query: string; validToken: boolean }> {
  const token = fc.oneof(
    {
      arbitrary: fc
        .constantFrom(...callers)
        .map((caller) => ({ value: caller.token as string | undefined, valid: true })),
      weight: 4,
    },
    {
      arbitrary: fc
        .constantFrom<string | undefined>(
          undefined,
          '',
          'garbage',
          'a.b.c',
          'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.',
          'A'.repeat(9000),
        )
        .map((value) => ({ value, valid: false })),
      weight: 2,
    },
    {
      arbitrary: fc
        .tuple(fc.constantFrom(...callers), fc.nat())
        .map(([caller, at]) => ({ value: tamper(caller.token, at) as string | undefined, valid: false })),
      weight: 1,
    },
  );
  const streamId = fc.oneof(
    fc.constant<string | undefined>(undefined),
    fc.constantFrom(...world.knownIds).map((id) => percentEncode(id)),
    fc.constantFrom(...HOSTILE_SEGMENTS),
    fc.string({ unit: 'binary', maxLength: 30 }).map(percentEncode),
  );
  return fc
    .record({ token, streamId, duplicate: fc.boolean() })
    .map(({ token: chosen, streamId: stream, duplicate }) => {
      const parts: string[] = [];
      if (chosen.value !== undefined) parts.push(`token=${encodeURIComponent(chosen.value)}`);
      if (duplicate && chosen.value !== undefined) parts.push('token=garbage');
      if (stream !== undefined) parts.push(`streamId=${stream}`);
      // A duplicated token is joined with a comma (API Gateway's way): never a valid token.
      return { query: parts.join('&'), validToken: chosen.valid && !duplicate };
    });
}

/** Opens an upgrade and reports the status: 101, or the refusal's status. Never hangs. */
export function tryUpgrade(
  url: string,
  timeoutMs = 10_000,
): Promise<{ status: number; socket?: WebSocket; error?: string }> {
  return new Promise((resolvePromise) => {
    const socket = new WebSocket(url);
    const timer = setTimeout(() => {
      socket.terminate();
      resolvePromise({ status: 0, error: 'timeout' });
    }, timeoutMs);
    socket.once('open', () => {
      clearTimeout(timer);
      resolvePromise({ status: 101, socket });
    });
    socket.once('unexpected-response', (_request, response) => {
      clearTimeout(timer);
      resolvePromise({ status: response.statusCode ?? 0 });
      response.resume();
      socket.terminate();
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      resolvePromise({ status: 0, error: error.message });
    });
  });
}

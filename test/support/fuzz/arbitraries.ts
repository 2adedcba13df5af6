import fc from 'fast-check';
import { z } from 'zod';
import { GIFTS, PACKAGE_COINS, packageId } from '../../../shared/domain/catalog';

/**
 * Values from a JSON Schema (the one z.toJSONSchema makes of a handler's zod schema), in two
 * families: "valid-looking" values that satisfy the schema (they may legitimately succeed) and
 * values mutated past it (wrong types, huge, negative, fractional, unicode, lone surrogates,
 * missing or extra fields).
 */

// ---------------------------------------------------------------- JSON Schema -> arbitraries

/** The subset of JSON Schema that z.toJSONSchema emits for our request schemas. */
export interface JsonSchemaNode {
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

export function hintsFor(name: string | undefined, world: FuzzWorld): readonly string[] {
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

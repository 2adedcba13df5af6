import fc from 'fast-check';
import { createHmac } from 'node:crypto';
import type { HttpRoute } from '../../../infra/routes';
import { MAX_BODY_BYTES } from '../../../shared/http/route';
import {
  type FuzzWorld,
  hintsFor,
  hostileString,
  hostileValue,
  type JsonSchemaNode,
  jsonSchemaOf,
  PROTOTYPE_KEYS,
  pastSchema,
  RawJson,
  Repeated,
  toJsonText,
  validLooking,
} from './arbitraries';
import type { HttpSpec } from './specs';

/** One HTTP request per case: path segments, query, body and headers, each valid-looking or hostile. */

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
export function percentEncode(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const char = String.fromCharCode(byte);
    out += /[A-Za-z0-9\-._~]/.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Raw path segments: traversal, encoded slashes, broken escapes, encoded surrogates, overlong UTF-8. */
export const HOSTILE_SEGMENTS = [
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
export function tamper(token: string, at: number): string {
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

export function signatureHeader(signature: StripeSignatureCase, body: Buffer): string | string[] | undefined {
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

/** The parts a case is built from, before they become headers. */
interface CaseParts {
  pathSegments: Record<string, string>;
  query: string;
  body: BodyCase;
  authorization: AuthorizationCase;
  idempotencyKey: string | string[] | undefined;
  contentType: string | string[] | undefined;
  extraHeaders: Record<string, string>;
  stripeSignature: StripeSignatureCase | undefined;
}

/** What a route's case is made of: its path parameters and the published schemas of each part. */
interface RouteShape {
  parameterNames: string[];
  pathNode: JsonSchemaNode | undefined;
  queryNode: JsonSchemaNode | undefined;
  needsAuth: boolean;
  stripeSignature: fc.Arbitrary<StripeSignatureCase | undefined>;
}

function routeShape({ route, spec }: HttpCaseOptions): RouteShape {
  return {
    parameterNames: [...route.path.matchAll(/\{([A-Za-z0-9_]+)\}/g)].map((match) => match[1] ?? ''),
    pathNode: spec?.path ? jsonSchemaOf(spec.path) : undefined,
    queryNode: spec?.query ? jsonSchemaOf(spec.query) : undefined,
    needsAuth: route.auth === 'jwt',
    stripeSignature: route.path === '/v1/webhooks/stripe' ? stripeSignatureArbitrary() : fc.constant(undefined),
  };
}

const extraHeadersArbitrary = fc.dictionary(
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

/** Everything mutated at once: a hostile header alone stops a request at the first check. */
function mixedParts(options: HttpCaseOptions, shape: RouteShape): fc.Arbitrary<CaseParts> {
  const { route, spec, callers, world } = options;
  const segments: Record<string, fc.Arbitrary<string>> = {};
  for (const name of shape.parameterNames)
    segments[name] = segmentArbitrary(shape.pathNode?.properties?.[name], world, name);
  const authorization = shape.needsAuth
    ? authorizationArbitrary(callers)
    : fc.oneof(
        {
          arbitrary: fc.constant<AuthorizationCase>({ caller: 'anonymous', value: undefined, valid: false }),
          weight: 4,
        },
        { arbitrary: authorizationArbitrary(callers), weight: 1 },
      );
  return fc.record({
    pathSegments: fc.record(segments),
    query: queryArbitrary(shape.queryNode, world),
    body: bodyArbitrary(spec, world),
    authorization,
    // Every POST gets the key variants (the contract's idempotent POSTs must refuse bad ones; the others ignore it).
    idempotencyKey: route.method === 'POST' ? idempotencyKeyArbitrary : fc.constant(undefined),
    contentType: contentTypeArbitrary,
    extraHeaders: extraHeadersArbitrary,
    stripeSignature: shape.stripeSignature,
  });
}

/** Everything valid-looking: these cases reach the use cases. */
function validLookingParts(options: HttpCaseOptions, shape: RouteShape): fc.Arbitrary<CaseParts> {
  const { route, spec, callers, world } = options;
  const validSegments: Record<string, fc.Arbitrary<string>> = {};
  for (const name of shape.parameterNames) {
    const node = shape.pathNode?.properties?.[name];
    validSegments[name] = (node ? validLooking(node, world, name) : fc.constantFrom(...hintsFor(name, world))).map(
      (value) => percentEncode(String(value)),
    );
  }
  const bodyNode = spec?.body ? jsonSchemaOf(spec.body) : undefined;
  const queryNode = shape.queryNode;
  return fc.record({
    pathSegments: fc.record(validSegments),
    query: queryNode?.properties
      ? validLooking(queryNode, world).map((value) =>
          encodeQuery(Object.entries((value ?? {}) as Record<string, unknown>)),
        )
      : fc.constant(''),
    body: bodyNode
      ? validLooking(bodyNode, world).map((value): BodyCase => ({ kind: 'json', valid: true, value }))
      : fc.constant<BodyCase>({ kind: 'none' }),
    authorization: shape.needsAuth
      ? fc
          .constantFrom(...callers)
          .map((chosen): AuthorizationCase => ({ caller: chosen.label, value: `Bearer ${chosen.token}`, valid: true }))
      : fc.constant<AuthorizationCase>({ caller: 'anonymous', value: undefined, valid: false }),
    idempotencyKey:
      route.method === 'POST' ? fc.uuid().map((key): string | string[] | undefined => key) : fc.constant(undefined),
    contentType: fc.constant<string | string[] | undefined>('application/json'),
    extraHeaders: fc.constant({}),
    stripeSignature: shape.stripeSignature,
  });
}

function fuzzedCase(parts: CaseParts): FuzzedHttpCase {
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
}

/** Cases for one route: everything mutated at once, or everything valid-looking. */
export function httpCaseArbitrary(options: HttpCaseOptions): fc.Arbitrary<FuzzedHttpCase> {
  const shape = routeShape(options);
  return fc
    .oneof(
      { arbitrary: validLookingParts(options, shape), weight: 2 },
      { arbitrary: mixedParts(options, shape), weight: 3 },
    )
    .map(fuzzedCase);
}

import { resolve } from 'node:path';
import * as z from 'zod';
import { API_ERRORS } from '../domain/errors';
import type { PublishedRouteSpec } from './route';
import { IDEMPOTENCY_KEY_PATTERN, MAX_BODY_BYTES } from './route';

/**
 * What the document needs of a route. The caller hands the routes in (the route table lives in
 * infra/, and shared/ never imports infra/); the route table's HttpRoute fits this shape.
 */
export interface DocumentedRoute {
  name: string;
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  /** The handler file, relative to the repository root; its published routeSpec describes the inputs. */
  handler: string;
  auth: 'jwt' | 'none';
  localOnly?: boolean;
}

/**
 * The OpenAPI 3.1 document of the HTTP API, generated from the route table and the zod schemas
 * each handler publishes (`handler.routeSpec`, set by httpRoute): the very schemas that parse
 * the requests and type the answers, so the document cannot drift from what the API accepts and
 * answers. Every error shares one component with the codes of the error table.
 */

/** Handler paths in the route table are relative to the repository root. */
const REPO_ROOT = resolve(__dirname, '..', '..');

/** The error table, re-exported for the document's readers (the docs page, the fuzzer's checks). */
export { API_ERRORS } from '../domain/errors';

/**
 * What each route does and answers, in API.md's words, for readers of the docs. Keyed by method
 * and path shape; a route missing here still gets a summary made from its name. The success
 * status and the schema of its body come from the handler (its published `response`).
 */
const ROUTE_DOCS: Readonly<Record<string, { summary: string; returns: string }>> = {
  'GET /health': { summary: 'Health check', returns: '`{ "status": "ok" }` once every part of the stack is up.' },
  'GET /v1/packages': {
    summary: "The coin packages of a country's price list",
    returns:
      '`{ country, currency, packages: [ { id, coins, price, offer?: { offerId, kind, price, bonusCoins, endsAt, firstRechargeOnly } } ], platformFee?, methods: [ { method, confirmation, fee } ] }`: `price` is all in for a card payment (coins plus the platform fee); each method adds its `fee`. An unsupported country is 403 REGION_UNAVAILABLE.',
  },
  'GET /v1/gifts': { summary: 'The gift catalog', returns: '`{ gifts: [ { id, name, coins } ] }`.' },
  'GET /v1/wallet': {
    summary: "The caller's wallet",
    returns:
      '`{ userId, coins, owedCoins, diamonds, pendingDiamonds, locked, budget: { monthlyLimit: {amount, currency} | null, spentThisMonth } }`; zeros for a new user.',
  },
  'GET /v1/wallet/transactions': {
    summary: "The caller's ledger entries, newest first",
    returns:
      '`{ items: [ { id, type, coins, diamonds, pendingDiamonds, createdAt, ref } ], nextCursor }`; amounts are signed deltas.',
  },
  'PUT /v1/wallet/budget': {
    summary: 'Set or clear the monthly spending budget',
    returns: 'The wallet. A budget a guardian set can be lowered, not raised or removed (403 BUDGET_SET_BY_GUARDIAN).',
  },
  'GET /v1/creators/{}': {
    summary: "A creator's public profile, to check before gifting",
    returns:
      '`{ creatorId, displayName, streamingSince, streams, verified, giftCoinsReceived }`; someone who never went live is 404.',
  },
  'PUT /v1/operator/creators/{}/verified': {
    summary: "Operators grant or withdraw a creator's verified badge (audited)",
    returns: 'The profile; a creator without a profile is 404, a non-operator 403.',
  },
  'PUT /v1/creator/profile': {
    summary: 'A creator sets the display name of their profile',
    returns: 'The profile; before the first stream, 404.',
  },
  'POST /v1/guardian-invites': {
    summary: 'A teenager invites a guardian to give parental consent',
    returns:
      '`{ inviteId, teenId, guardianId, status, createdAt, decidedAt }`; asking the same guardian again while the invite waits answers the same invite.',
  },
  'GET /v1/guardian-invites': {
    summary: 'The invites waiting for the caller, as a guardian',
    returns: '`{ items: [invite] }`, oldest first.',
  },
  'POST /v1/guardian-invites/{}/approve': {
    summary: 'The invited guardian approves: parental consent, recorded with its time and guardian',
    returns:
      'The invite. Needs the guardian’s own majority (403 AGE_RESTRICTED); anyone but the invited guardian gets 404, the teenager 403.',
  },
  'POST /v1/guardian-invites/{}/decline': {
    summary: 'The invited guardian declines',
    returns: 'The invite; anyone but the invited guardian gets 404, the teenager 403.',
  },
  'GET /v1/consent': {
    summary: 'The caller’s parental consent, as recharges and gifts judge it',
    returns:
      '`{ consented, appConsent: granted | revoked | none, guardianId, decidedAt }`; the app’s decision overrides the token’s claim.',
  },
  'POST /v1/wards/{}/consent/revoke': {
    summary: 'The guardian of record revokes consent',
    returns: '`{ teenId, appConsent: "revoked", decidedAt }`. Anyone else gets 404.',
  },
  'PUT /v1/wards/{}/budget': {
    summary: 'The guardian of record sets the teenager’s monthly budget',
    returns: '`{ teenId, monthlyLimit, setBy: "guardian" }`, in the teenager’s price-list currency.',
  },
  'PUT /v1/wallet/lock': {
    summary: 'Lock or unlock the wallet',
    returns: 'The wallet. A wallet locked after a dispute stays locked.',
  },
  'POST /v1/wallet/transactions/{}/report': {
    summary: 'Report a transaction (also locks the wallet)',
    returns: '`{ reportId }`.',
  },
  'POST /v1/recharges': {
    summary: 'Buy a coin package',
    returns:
      '`{ rechargeId, status: "pending", coins, price, payment: { provider: "stripe", paymentIntentId, clientSecret, confirmation?, redirectUrl? }, method?, bonusCoins?, offerId?, breakdown? }`: `price` is the all-in amount charged. A request naming `method`, `offerId` or `expectedTotal` (or any fee) gets the breakdown `{ coins, discount, platformFee, methodFee, total }`; PayPal answers a `redirectUrl`. Coins are credited when the payment succeeds.',
  },
  'GET /v1/recharges/{}': {
    summary: 'A recharge of the caller',
    returns:
      '`{ rechargeId, status, coins, price, createdAt, method?, bonusCoins?, offerId?, breakdown? }`, status `pending`, `succeeded`, `failed` or `disputed`; an itemized recharge repeats its breakdown as the receipt.',
  },
  'POST /v1/webhooks/stripe': {
    summary: 'Stripe webhook (signed with Stripe-Signature)',
    returns: '`{ "received": true }`, also for repeated and ignored events; a bad signature is 400.',
  },
  'POST /v1/streams': {
    summary: 'Go live',
    returns: '`{ streamId, creatorId, title, status: "live", startedAt }`. Needs majority.',
  },
  'GET /v1/streams': { summary: 'Live streams, newest first', returns: '`{ items: [ stream ], nextCursor }`.' },
  'GET /v1/streams/{}': {
    summary: 'A stream',
    returns: '`{ streamId, creatorId, title, status, giftCoins, viewers }`.',
  },
  'POST /v1/streams/{}/end': {
    summary: 'End the caller’s stream',
    returns: 'The stream with `status: "ended"`; another creator’s stream is 403 FORBIDDEN.',
  },
  'GET /v1/streams/{}/leaderboard': {
    summary: 'Top gifters of a stream',
    returns: '`{ items: [ { userId, coins } ] }`, may lag gifts by a few seconds.',
  },
  'GET /v1/streams/{}/events': {
    summary: 'Catch up on gift events after a reconnect',
    returns:
      '`{ items, nextSeq }`: the gift events broadcast after `after`, in seq order; pass `nextSeq` as `after` for the next page.',
  },
  'POST /v1/streams/{}/gifts': {
    summary: 'Send a gift to a live stream',
    returns: '`{ giftTxId, coinsSpent, wallet: { coins } }`; every viewer of the stream receives the gift event.',
  },
  'GET /v1/notifications': {
    summary: 'Gifts received by the caller, and the outcome of their reports',
    returns:
      '`{ items: [ { id, type: "gift_received", streamId, fromUserId, giftId, quantity, diamonds, createdAt } | { id, type: "report_resolved", reportId, outcome: { lock, refundedRechargeIds }, createdAt } ], nextCursor }`.',
  },
  'POST /v1/creator/payout-account': {
    summary: 'Create or resume the payout account',
    returns: '`{ accountId, onboardingUrl, payoutsEnabled }`; the same account on a second call.',
  },
  'GET /v1/creator/payout-account': {
    summary: 'The payout account',
    returns: '`{ accountId, payoutsEnabled }`, or 404 when none is linked.',
  },
  'POST /v1/payouts': {
    summary: 'Request a payout of diamonds',
    returns: '`{ payoutId, status: "requested", diamonds, amount: { amount, currency } }`; the transfer follows.',
  },
  'GET /v1/payouts': {
    summary: "The caller's payouts, newest first",
    returns: '`{ items: [ payout ], nextCursor }`, status `requested`, `processing`, `paid` or `failed`.',
  },
  'GET /v1/payouts/{}': { summary: 'A payout of the caller', returns: '`{ payoutId, status, diamonds, amount }`.' },
  'GET /v1/operator/audit': {
    summary: 'The operators’ audit trail, newest first (operators only)',
    returns: '`{ items: [ { auditId, operatorId, action, target, at, details } ], nextCursor }`; anyone else 403.',
  },
  'POST /v1/operator/offers': {
    summary: 'Create a special offer (operators only)',
    returns:
      'The offer `{ offerId, packageId, kind, discountPercent, bonusCoins, countries, firstRechargeOnly, startsAt, endsAt, createdBy, createdAt }`.',
  },
  'GET /v1/operator/offers': {
    summary: 'Every offer, newest first (operators only)',
    returns: '`{ items: [ offer ] }`.',
  },
  'POST /v1/operator/offers/{}/end': {
    summary: 'End an offer now (operators only)',
    returns: 'The offer with `endedAt`; recharges already created under it keep its terms.',
  },
  'GET /v1/operator/cases': {
    summary: 'Open support cases, oldest first (operators only)',
    returns:
      '`{ items: [ { caseId, kind: "report" | "wallet_locked", userId, status, createdAt, reportId?, transactionId?, reportReason?, rechargeId? } ], nextCursor }`; anyone else 403.',
  },
  'GET /v1/operator/cases/{}': {
    summary: 'One support case with its wallet and ledger (operators only)',
    returns:
      '`{ case, wallet: { userId, coins, owedCoins, locked, lockReason }, transaction, ledger: { before, after }, recharges: [ { rechargeId, price, status, refundedMinor, refundable, ... } ] }`.',
  },
  'POST /v1/operator/cases/{}/resolve': {
    summary: 'Resolve a support case: refunds through Stripe, keep or lift the lock, a note (operators only, audited)',
    returns:
      '`{ caseId, status: "resolved", resolution: { operatorId, resolvedAt, lock, note, reason, refunds: [ { rechargeId, paymentIntentId } ] } }`; a replay with the same Idempotency-Key answers the same and finishes refunds still owed. A recharge not of the case\'s wallet is 400; one that cannot be refunded, or a case already resolved, 409.',
  },
  'GET /v1/wallet/reports/{}': {
    summary: "The caller's report and its outcome",
    returns:
      '`{ reportId, transactionId, status: "open" | "resolved", createdAt, outcome: { lock: "kept" | "lifted", refundedRechargeIds } | null, resolvedAt }`; another user\'s report is 404.',
  },
  'POST /dev/tokens': {
    summary: 'A demo token from the local issuer',
    returns: '`{ token }`; `groups: ["operators"]` makes an operator (`cognito:groups`).',
  },
  'POST /dev/payments/{}/{}': {
    summary: 'Complete, fail, dispute or refund a payment through the local stand-in',
    returns: 'The stand-in sends the matching signed Stripe event to the webhook, as Stripe would.',
  },
};

/** "POST /v1/streams/{streamId}/gifts" -> "POST /v1/streams/{}/gifts": parameter names do not matter. */
function routeShape(method: string, path: string): string {
  return `${method} ${path.replace(/\{[^}]+\}/g, '{}')}`;
}

export type JsonSchema = Record<string, unknown>;

export interface OpenApiParameter {
  name: string;
  in: 'path' | 'query' | 'header';
  required: boolean;
  description?: string;
  schema: JsonSchema;
}

export interface OpenApiResponse {
  description: string;
  content?: { 'application/json': { schema: JsonSchema } };
  $ref?: never;
}

export interface OpenApiOperation {
  operationId: string;
  summary: string;
  tags: string[];
  security: Array<Record<string, string[]>>;
  parameters: Array<OpenApiParameter | { $ref: string }>;
  requestBody?: { required: boolean; description?: string; content: { 'application/json': { schema: JsonSchema } } };
  responses: Record<string, OpenApiResponse | { $ref: string }>;
  'x-local-only'?: true;
  'x-idempotent'?: true;
  'x-operator'?: true;
}

export interface OpenApiDocument {
  openapi: '3.1.0';
  jsonSchemaDialect: string;
  info: { title: string; version: string; description: string };
  servers: Array<{ url: string; description: string }>;
  tags: Array<{ name: string }>;
  paths: Record<string, Partial<Record<'get' | 'post' | 'put' | 'delete', OpenApiOperation>>>;
  components: {
    securitySchemes: Record<string, unknown>;
    parameters: Record<string, OpenApiParameter>;
    schemas: Record<string, JsonSchema>;
    responses: Record<string, unknown>;
  };
}

const zodSchema = z.custom<z.ZodType>((value) => value instanceof z.ZodType, 'a zod schema');

/** What httpRoute publishes on a handler, checked rather than cast (it comes from another module). */
const publishedSpec = z.object({
  route: z.string(),
  auth: z.boolean(),
  operator: z.boolean().optional(),
  idempotent: z.boolean(),
  body: zodSchema.optional(),
  query: zodSchema.optional(),
  path: zodSchema.optional(),
  signedBody: z.object({ header: z.string().min(1) }).optional(),
  response: z.object({ status: z.number().int().min(200).max(299), schema: zodSchema }).optional(),
});

/** Reads a handler module's published route spec; undefined when it was not built with httpRoute. */
export function loadRouteSpec(route: DocumentedRoute): PublishedRouteSpec | undefined {
  // require, not import(): the handler file is named at run time and loaded synchronously, as Lambda does.
  const module: unknown = require(resolve(REPO_ROOT, route.handler));
  // The handler is a function (middy) carrying routeSpec as a property, so it is read by hand.
  const handler = typeof module === 'object' && module !== null && 'handler' in module ? module.handler : undefined;
  const routeSpec: unknown = typeof handler === 'function' && 'routeSpec' in handler ? handler.routeSpec : undefined;
  if (routeSpec === undefined) return undefined;
  const parsed = publishedSpec.safeParse(routeSpec);
  if (!parsed.success) throw new Error(`${route.handler}: handler.routeSpec is malformed: ${parsed.error.message}`);
  return parsed.data;
}

/** Requests are described as clients send them (`input`), answers as handlers produce them (`output`). */
function jsonSchema(schema: z.ZodType, io: 'input' | 'output' = 'input'): JsonSchema {
  const converted = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as JsonSchema;
  // The document declares the dialect once (jsonSchemaDialect); embedded schemas do not repeat it.
  const { $schema: _dialect, ...rest } = converted;
  return rest;
}

function objectProperties(schema: JsonSchema): { properties: Record<string, JsonSchema>; required: Set<string> } {
  const properties = z.record(z.string(), z.record(z.string(), z.unknown())).safeParse(schema.properties);
  const required = z.array(z.string()).safeParse(schema.required);
  return {
    properties: properties.success ? properties.data : {},
    required: new Set(required.success ? required.data : []),
  };
}

function pathParameterNames(path: string): string[] {
  return [...path.matchAll(/\{([A-Za-z0-9_]+)\}/g)].map((match) => match[1] ?? '').filter((name) => name !== '');
}

function tagOf(path: string): string {
  const segments = path.split('/').filter((segment) => segment !== '' && !segment.startsWith('{'));
  if (segments[0] === 'dev') return 'local only';
  const meaningful = segments[0] === 'v1' ? segments[1] : segments[0];
  return meaningful ?? 'other';
}

/** "WalletTransactions" -> "Wallet transactions". */
function summaryOf(name: string): string {
  const words = name.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

function operationFor(route: DocumentedRoute, spec: PublishedRouteSpec | undefined): OpenApiOperation {
  const auth = spec?.auth ?? route.auth === 'jwt';
  const parameters: OpenApiOperation['parameters'] = [];

  const pathSchema = spec?.path ? objectProperties(jsonSchema(spec.path)).properties : {};
  for (const name of pathParameterNames(route.path)) {
    parameters.push({ name, in: 'path', required: true, schema: pathSchema[name] ?? { type: 'string' } });
  }
  if (spec?.query) {
    const { properties, required } = objectProperties(jsonSchema(spec.query));
    for (const [name, schema] of Object.entries(properties)) {
      parameters.push({ name, in: 'query', required: required.has(name), schema });
    }
  }
  if (spec?.idempotent) parameters.push({ $ref: '#/components/parameters/IdempotencyKey' });
  if (spec?.signedBody) {
    parameters.push({
      name: spec.signedBody.header,
      in: 'header',
      required: true,
      description: 'The signature over the raw body; a missing, wrong or stale one is 400.',
      schema: { type: 'string', minLength: 1 },
    });
  }

  const docs = ROUTE_DOCS[routeShape(route.method, route.path)];
  const success: OpenApiResponse = { description: docs?.returns ?? 'Success.' };
  if (spec?.response) success.content = { 'application/json': { schema: jsonSchema(spec.response.schema, 'output') } };
  const operation: OpenApiOperation = {
    operationId: route.name,
    summary: docs?.summary ?? summaryOf(route.name),
    tags: [tagOf(route.path)],
    security: auth ? [{ bearerAuth: [] }] : [],
    parameters,
    responses: {
      [String(spec?.response?.status ?? 200)]: success,
      '4XX': { $ref: '#/components/responses/Error' },
      '5XX': { $ref: '#/components/responses/Error' },
    },
  };
  if (spec?.body) {
    // A body schema that accepts nothing at all (the /dev routes, `.../end`) makes the body optional.
    operation.requestBody = {
      required: !spec.body.safeParse(undefined).success,
      content: { 'application/json': { schema: jsonSchema(spec.body) } },
    };
  }
  if (spec?.signedBody) operation.requestBody = signedRequestBody(spec.signedBody.header);
  if (route.localOnly) operation['x-local-only'] = true;
  if (spec?.idempotent) operation['x-idempotent'] = true;
  if (spec?.operator) operation['x-operator'] = true;
  return operation;
}

/**
 * A signed body is verified over its exact bytes: it is JSON, but a client (or a proxy) that
 * parses and re-serializes it breaks the signature, so it is declared as raw bytes.
 */
function signedRequestBody(header: string): NonNullable<OpenApiOperation['requestBody']> {
  return {
    required: true,
    description: `The event exactly as the sender sent it: \`${header}\` signs these raw bytes, so they are passed on unparsed.`,
    content: { 'application/json': { schema: { type: 'string', format: 'binary' } } },
  };
}

const DESCRIPTION = [
  'Coins bought with real money, gifts to creators during live streams, creator payouts.',
  '',
  'JSON in and out; every amount is an integer (coins, diamonds, money in minor units as `{ amount, currency }`).',
  'Authenticated routes take `Authorization: Bearer <JWT>`; the user id, birthdate, country and parental consent come from the token.',
  `Money-moving POSTs require an \`Idempotency-Key\` header: the same key with the same body within 24 hours replays the first answer. Bodies over ${MAX_BODY_BYTES} bytes are refused (413).`,
  '',
  'Live viewers connect to the WebSocket API with `?token=<JWT>&streamId=<id>` and send `{ "action": "sendGift", "requestId", "giftId", "quantity" }`, `{ "action": "join", "streamId" }` or `{ "action": "ping" }`.',
  'They receive `giftAck`, `error`, `gift` (with a per-stream `seq`), `wallet`, `streamEnded`, `pong`, and `batch` frames that pack several of these.',
  'After a reconnect a client catches up with `GET /v1/streams/{streamId}/events?after=<seq>`.',
  '',
  'Operations marked `x-local-only` exist only on the local stack (`npm start`).',
].join('\n');

/** Builds the document from the routes it is handed; `loadSpec` is injectable so tests can feed specs of their own. */
export function buildOpenApiDocument(
  routes: readonly DocumentedRoute[],
  loadSpec: (route: DocumentedRoute) => PublishedRouteSpec | undefined = loadRouteSpec,
): OpenApiDocument {
  const paths: OpenApiDocument['paths'] = {};
  const tags = new Set<string>();
  for (const route of routes) {
    const operation = operationFor(route, loadSpec(route));
    for (const tag of operation.tags) tags.add(tag);
    const item = (paths[route.path] ??= {});
    item[route.method.toLowerCase() as Lowercase<DocumentedRoute['method']>] = operation;
  }
  return {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info: { title: 'Live gifting API', version: '1', description: DESCRIPTION },
    // Relative: resolved against wherever the document is served (the local stack or the cloud API).
    servers: [{ url: '/', description: 'the server that serves this document' }],
    tags: [...tags].sort().map((name) => ({ name })),
    paths,
    components: COMPONENTS,
  };
}

/** The parts every operation refers to: bearer auth, the Idempotency-Key header, the error shape. */
const COMPONENTS: OpenApiDocument['components'] = {
  securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
  parameters: {
    IdempotencyKey: {
      name: 'Idempotency-Key',
      in: 'header',
      required: true,
      description:
        'The client-chosen key of this request: the same key with the same body replays the first answer; with another body it is 422 IDEMPOTENCY_KEY_REUSED.',
      schema: { type: 'string', minLength: 1, maxLength: 255, pattern: IDEMPOTENCY_KEY_PATTERN.source },
    },
  },
  schemas: {
    ErrorCode: {
      type: 'string',
      enum: API_ERRORS.map((error) => error.code),
      description: API_ERRORS.map((error) => `${error.code} (${error.status}): ${error.when}`).join('\n'),
    },
    Error: {
      type: 'object',
      required: ['error'],
      properties: {
        error: {
          type: 'object',
          required: ['code', 'message'],
          properties: {
            code: { $ref: '#/components/schemas/ErrorCode' },
            message: { type: 'string' },
            details: {
              type: 'array',
              description: 'Validation problems, one per field.',
              items: {
                type: 'object',
                required: ['path', 'message'],
                properties: { path: { type: 'string' }, message: { type: 'string' } },
              },
            },
            correlationId: { type: 'string', description: 'On INTERNAL: quote it to support.' },
          },
        },
      },
    },
  },
  responses: {
    Error: {
      description: 'A refusal: `{ "error": { "code", "message", "details"? } }`. 429 carries `Retry-After`.',
      content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
    },
  },
};

let cached: string | undefined;

/** The document as served at /openapi.json: built once, on first request, when every handler can load. */
export function openApiJson(routes: readonly DocumentedRoute[]): string {
  cached ??= JSON.stringify(buildOpenApiDocument(routes), null, 2);
  return cached;
}

/**
 * The route table: every HTTP route, WebSocket route, queue consumer and schedule, with the
 * handler file that serves it and the access it needs. The CDK stack and the local gateway are
 * both built from this list, so local and cloud cannot drift. Paths are API Gateway route keys.
 */

/** What a function may touch; the CDK stack turns this into least-privilege grants. */
export interface Access {
  ledger?: 'read' | 'readWrite';
  connections?: 'read' | 'readWrite';
  /** Queues it sends to. */
  sendsTo?: QueueName[];
  /** Reads the Stripe secrets. */
  stripe?: boolean;
  /** Posts to WebSocket connections through the @connections API. */
  postsToConnections?: boolean;
  /** Counts its callers' requests in the shared rate-limit counters (`RATE#` items of the ledger). */
  rateLimit?: boolean;
}

export interface HttpRoute {
  name: string;
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  handler: string;
  /** 'jwt': behind the JWT authorizer, and its handler gets the caller; 'none': public (catalog, webhooks, /dev). */
  auth: 'jwt' | 'none';
  /** Operators only: anyone else is 403 FORBIDDEN after the token and the body's size, before the body is parsed. */
  operator?: boolean;
  /** Money-moving POSTs: they require an Idempotency-Key, and their handler gets it with the request's fingerprint. */
  idempotent?: boolean;
  /**
   * Every authenticated route takes from its caller's rate limit: POSTs as writes, GETs as reads.
   * `write` makes a route take a write token whatever its method; `cost` is how many tokens a
   * request takes (default 1), more for reads that query every creator shard.
   */
  rateLimit?: { write?: boolean; cost?: number };
  /** Served only by the local gateway; never synthesized into the cloud templates. */
  localOnly?: boolean;
  access: Access;
}

export interface WebSocketRoute {
  name: string;
  routeKey: string;
  handler: string;
  /** Two-way route: the handler's answer goes back on the connection. */
  returnResponse: boolean;
  access: Access;
}

export type QueueName = 'payouts' | 'giftEvents';

/** A queue and its dead-letter queue. The local SQS stand-in takes any name (its tests use their own queues). */
export interface QueueDefinition<Name extends string = QueueName> {
  logicalName: Name;
  fifo: boolean;
  /** At least 6x the consumer's timeout (AWS guidance for SQS event sources). */
  visibilityTimeoutSeconds: number;
  deadLetter: { maxReceiveCount: number };
}

/**
 * The environment variable that carries a queue's URL, the one namer for the CDK stack, the local
 * stack and shared/config.ts: `giftEvents` -> `GIFT_EVENTS_QUEUE_URL`, `payouts2` -> `PAYOUTS2_QUEUE_URL`.
 */
export function queueUrlEnvVar(queue: string): string {
  return `${queue.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()}_QUEUE_URL`;
}

/**
 * What a function may really touch: its `access`, plus the table access posting implies. The
 * @connections poster finds a user's or stream's connections (the table's indexes) and deletes a
 * connection that answered GoneException (shared/adapters/connections-api.ts).
 */
export function effectiveAccess(access: Access): Access {
  if (!access.postsToConnections) return access;
  return { ...access, connections: 'readWrite' };
}

/** The Stripe secret: its ARN on AWS (Secrets Manager), the keys themselves under the local stack. */
const STRIPE_SECRET_VARIABLES = ['STRIPE_SECRET_ARN', 'STRIPE_SECRET_KEY', 'STRIPE_WEBHOOK_SECRET'] as const;
const TABLE_VARIABLES = ['LEDGER_TABLE', 'CONNECTIONS_TABLE'] as const;
const CONNECTIONS_ENDPOINT_VARIABLE = 'WS_MANAGEMENT_ENDPOINT';

/**
 * Whether an environment variable carries a grant (a table, a queue, the Stripe secret, the
 * @connections endpoint), as opposed to plain configuration every function may read.
 */
export function isGrantVariable(name: string): boolean {
  return (
    (TABLE_VARIABLES as readonly string[]).includes(name) ||
    (STRIPE_SECRET_VARIABLES as readonly string[]).includes(name) ||
    name === CONNECTIONS_ENDPOINT_VARIABLE ||
    name.endsWith('_QUEUE_URL')
  );
}

/**
 * The grant-carrying variables a function with this access is given: on AWS by bindAccess
 * (infra/constructs/access.ts), under `npm start` by the local runner, which hands each handler
 * only these, so a handler that reads a table or a queue its access does not name fails locally
 * exactly as it would on AWS. shared/config.ts reads both table names together.
 */
export function grantedVariables(access: Access): string[] {
  const effective = effectiveAccess(access);
  return [
    ...(effective.ledger || effective.connections || effective.rateLimit ? TABLE_VARIABLES : []),
    ...(effective.sendsTo ?? []).map(queueUrlEnvVar),
    ...(effective.stripe ? STRIPE_SECRET_VARIABLES : []),
    ...(effective.postsToConnections ? [CONNECTIONS_ENDPOINT_VARIABLE] : []),
  ];
}

export interface QueueConsumer {
  name: string;
  queue: QueueName;
  handler: string;
  batchSize: number;
  maximumBatchingWindowMs: number;
  maxConcurrency: number;
  timeoutSeconds: number;
  access: Access;
}

export interface Schedule {
  name: string;
  handler: string;
  everySeconds: number;
  timeoutSeconds: number;
  access: Access;
}

const read: Access = { ledger: 'read' };

/** The webhook Stripe is told to call (API.md): the route below, the stack's output and the local stand-in's target. */
export const STRIPE_WEBHOOK_PATH = '/v1/webhooks/stripe';

/**
 * What a read that queries every creator shard (leaderboard, notifications, transactions: 32-33
 * queries) takes from the read bucket: one user flooding them slowed other users' reads 75-fold.
 */
export const SHARD_FANOUT_READ_COST = 5;

/**
 * The HTTP routes as declared, with their literal `auth` and `idempotent`: a handler is built from
 * its route's declaration (`declaredHttpRoute`), so what its request holds follows from here.
 */
const DECLARED_HTTP_ROUTES = [
  { name: 'Health', method: 'GET', path: '/health', handler: 'functions/http/health.ts', auth: 'none', access: {} },
  {
    name: 'CatalogPackages',
    method: 'GET',
    path: '/v1/packages',
    handler: 'functions/http/catalog-packages.ts',
    auth: 'none',
    // Reads the open offers.
    access: read,
  },
  {
    name: 'CatalogGifts',
    method: 'GET',
    path: '/v1/gifts',
    handler: 'functions/http/catalog-gifts.ts',
    auth: 'none',
    access: {},
  },
  {
    name: 'WalletGet',
    method: 'GET',
    path: '/v1/wallet',
    handler: 'functions/http/wallet-get.ts',
    auth: 'jwt',
    access: read,
  },
  {
    name: 'WalletTransactions',
    method: 'GET',
    path: '/v1/wallet/transactions',
    handler: 'functions/http/wallet-transactions.ts',
    auth: 'jwt',
    rateLimit: { cost: SHARD_FANOUT_READ_COST },
    access: read,
  },
  {
    name: 'DevTokens',
    method: 'POST',
    path: '/dev/tokens',
    handler: 'infra/local/handlers/dev-tokens.ts',
    auth: 'none',
    localOnly: true,
    access: {},
  },
  // Live streams and gifts
  {
    name: 'StreamsCreate',
    method: 'POST',
    path: '/v1/streams',
    handler: 'functions/http/streams-create.ts',
    auth: 'jwt',
    rateLimit: { write: true },
    access: { ledger: 'readWrite' },
  },
  {
    name: 'StreamsList',
    method: 'GET',
    path: '/v1/streams',
    handler: 'functions/http/streams-list.ts',
    auth: 'jwt',
    access: read,
  },
  {
    name: 'StreamsGet',
    method: 'GET',
    path: '/v1/streams/{streamId}',
    handler: 'functions/http/streams-get.ts',
    auth: 'jwt',
    access: { ledger: 'read', connections: 'read' },
  },
  {
    name: 'StreamsEnd',
    method: 'POST',
    path: '/v1/streams/{streamId}/end',
    handler: 'functions/http/streams-end.ts',
    auth: 'jwt',
    rateLimit: { write: true },
    // Posts streamEnded itself only when the gift-events queue cannot be reached.
    access: { ledger: 'readWrite', connections: 'readWrite', sendsTo: ['giftEvents'], postsToConnections: true },
  },
  {
    name: 'StreamsLeaderboard',
    method: 'GET',
    path: '/v1/streams/{streamId}/leaderboard',
    handler: 'functions/http/streams-leaderboard.ts',
    auth: 'jwt',
    rateLimit: { cost: SHARD_FANOUT_READ_COST },
    access: read,
  },
  {
    name: 'StreamsEvents',
    method: 'GET',
    path: '/v1/streams/{streamId}/events',
    handler: 'functions/http/streams-events.ts',
    auth: 'jwt',
    access: read,
  },
  {
    name: 'GiftsSend',
    method: 'POST',
    path: '/v1/streams/{streamId}/gifts',
    handler: 'functions/http/gifts-send.ts',
    auth: 'jwt',
    idempotent: true,
    access: { ledger: 'readWrite', sendsTo: ['giftEvents'] },
  },
  {
    name: 'Notifications',
    method: 'GET',
    path: '/v1/notifications',
    handler: 'functions/http/notifications.ts',
    auth: 'jwt',
    rateLimit: { cost: SHARD_FANOUT_READ_COST },
    access: read,
  },
  // Creator payouts
  {
    name: 'PayoutAccountCreate',
    method: 'POST',
    path: '/v1/creator/payout-account',
    handler: 'functions/http/payout-account-create.ts',
    auth: 'jwt',
    rateLimit: { write: true },
    access: { ledger: 'readWrite', stripe: true },
  },
  {
    name: 'PayoutAccountGet',
    method: 'GET',
    path: '/v1/creator/payout-account',
    handler: 'functions/http/payout-account-get.ts',
    auth: 'jwt',
    access: read,
  },
  {
    name: 'PayoutsCreate',
    method: 'POST',
    path: '/v1/payouts',
    handler: 'functions/http/payouts-create.ts',
    auth: 'jwt',
    idempotent: true,
    access: { ledger: 'readWrite', sendsTo: ['payouts'] },
  },
  {
    name: 'PayoutsGet',
    method: 'GET',
    path: '/v1/payouts/{payoutId}',
    handler: 'functions/http/payouts-get.ts',
    auth: 'jwt',
    access: read,
  },
  {
    name: 'PayoutsList',
    method: 'GET',
    path: '/v1/payouts',
    handler: 'functions/http/payouts-list.ts',
    auth: 'jwt',
    access: read,
  },
  // Recharge
  {
    name: 'RechargesCreate',
    method: 'POST',
    path: '/v1/recharges',
    handler: 'functions/http/recharges-create.ts',
    auth: 'jwt',
    idempotent: true,
    access: { ledger: 'readWrite', stripe: true },
  },
  {
    name: 'RechargesGet',
    method: 'GET',
    path: '/v1/recharges/{rechargeId}',
    handler: 'functions/http/recharges-get.ts',
    auth: 'jwt',
    access: read,
  },
  {
    name: 'StripeWebhook',
    method: 'POST',
    path: STRIPE_WEBHOOK_PATH,
    handler: 'functions/http/stripe-webhook.ts',
    auth: 'none',
    access: { ledger: 'readWrite', stripe: true, connections: 'readWrite', postsToConnections: true },
  },
  {
    name: 'WalletBudget',
    method: 'PUT',
    path: '/v1/wallet/budget',
    handler: 'functions/http/wallet-budget.ts',
    auth: 'jwt',
    rateLimit: { write: true },
    access: { ledger: 'readWrite' },
  },
  {
    name: 'WalletLock',
    method: 'PUT',
    path: '/v1/wallet/lock',
    handler: 'functions/http/wallet-lock.ts',
    auth: 'jwt',
    rateLimit: { write: true },
    access: { ledger: 'readWrite' },
  },
  {
    name: 'CreatorsGet',
    method: 'GET',
    path: '/v1/creators/{creatorId}',
    handler: 'functions/http/creators-get.ts',
    auth: 'jwt',
    access: { ledger: 'read' },
  },
  {
    name: 'CreatorProfileSet',
    method: 'PUT',
    path: '/v1/creator/profile',
    handler: 'functions/http/creator-profile-set.ts',
    auth: 'jwt',
    rateLimit: { write: true },
    access: { ledger: 'readWrite' },
  },
  {
    name: 'GuardianInvitesCreate',
    method: 'POST',
    path: '/v1/guardian-invites',
    handler: 'functions/http/guardian-invites-create.ts',
    auth: 'jwt',
    rateLimit: { write: true },
    access: { ledger: 'readWrite' },
  },
  {
    name: 'GuardianInvitesList',
    method: 'GET',
    path: '/v1/guardian-invites',
    handler: 'functions/http/guardian-invites-list.ts',
    auth: 'jwt',
    access: { ledger: 'read' },
  },
  {
    name: 'GuardianInviteApprove',
    method: 'POST',
    path: '/v1/guardian-invites/{inviteId}/approve',
    handler: 'functions/http/guardian-invite-approve.ts',
    auth: 'jwt',
    rateLimit: { write: true },
    access: { ledger: 'readWrite' },
  },
  {
    name: 'GuardianInviteDecline',
    method: 'POST',
    path: '/v1/guardian-invites/{inviteId}/decline',
    handler: 'functions/http/guardian-invite-decline.ts',
    auth: 'jwt',
    rateLimit: { write: true },
    access: { ledger: 'readWrite' },
  },
  {
    name: 'ConsentGet',
    method: 'GET',
    path: '/v1/consent',
    handler: 'functions/http/consent-get.ts',
    auth: 'jwt',
    access: { ledger: 'read' },
  },
  {
    name: 'WardConsentRevoke',
    method: 'POST',
    path: '/v1/wards/{teenId}/consent/revoke',
    handler: 'functions/http/ward-consent-revoke.ts',
    auth: 'jwt',
    rateLimit: { write: true },
    access: { ledger: 'readWrite' },
  },
  {
    name: 'WardBudget',
    method: 'PUT',
    path: '/v1/wards/{teenId}/budget',
    handler: 'functions/http/ward-budget.ts',
    auth: 'jwt',
    rateLimit: { write: true },
    access: { ledger: 'readWrite' },
  },
  {
    name: 'TransactionReportsCreate',
    method: 'POST',
    path: '/v1/wallet/transactions/{transactionId}/report',
    handler: 'functions/http/wallet-report.ts',
    auth: 'jwt',
    rateLimit: { write: true },
    access: { ledger: 'readWrite' },
  },
  {
    name: 'TransactionReportsGet',
    method: 'GET',
    path: '/v1/wallet/reports/{reportId}',
    handler: 'functions/http/wallet-report-get.ts',
    auth: 'jwt',
    access: read,
  },
  // Operators: offers and the audit trail; 403 for anyone who is not an operator.
  {
    name: 'OperatorAudit',
    method: 'GET',
    path: '/v1/operator/audit',
    handler: 'functions/http/operator-audit.ts',
    auth: 'jwt',
    operator: true,
    access: read,
  },
  {
    name: 'OperatorOffersCreate',
    method: 'POST',
    path: '/v1/operator/offers',
    handler: 'functions/http/operator-offers-create.ts',
    auth: 'jwt',
    operator: true,
    rateLimit: { write: true },
    access: { ledger: 'readWrite' },
  },
  {
    name: 'OperatorOffersList',
    method: 'GET',
    path: '/v1/operator/offers',
    handler: 'functions/http/operator-offers-list.ts',
    auth: 'jwt',
    operator: true,
    access: read,
  },
  {
    name: 'OperatorOffersEnd',
    method: 'POST',
    path: '/v1/operator/offers/{offerId}/end',
    handler: 'functions/http/operator-offers-end.ts',
    auth: 'jwt',
    operator: true,
    rateLimit: { write: true },
    access: { ledger: 'readWrite' },
  },
  {
    name: 'OperatorCreatorVerified',
    method: 'PUT',
    path: '/v1/operator/creators/{creatorId}/verified',
    handler: 'functions/http/operator-creator-verified.ts',
    auth: 'jwt',
    operator: true,
    rateLimit: { write: true },
    access: { ledger: 'readWrite' },
  },
  // The support desk: open cases, one case, its resolution; 403 for anyone else.
  {
    name: 'OperatorCasesList',
    method: 'GET',
    path: '/v1/operator/cases',
    handler: 'functions/http/operator-cases-list.ts',
    auth: 'jwt',
    operator: true,
    access: read,
  },
  {
    name: 'OperatorCasesGet',
    method: 'GET',
    path: '/v1/operator/cases/{caseId}',
    handler: 'functions/http/operator-cases-get.ts',
    auth: 'jwt',
    operator: true,
    access: read,
  },
  {
    name: 'OperatorCasesResolve',
    method: 'POST',
    path: '/v1/operator/cases/{caseId}/resolve',
    handler: 'functions/http/operator-cases-resolve.ts',
    auth: 'jwt',
    operator: true,
    idempotent: true,
    access: { ledger: 'readWrite', stripe: true },
  },
  {
    name: 'DevPayments',
    method: 'POST',
    path: '/dev/payments/{paymentIntentId}/{action}',
    handler: 'functions/http/dev-payments.ts',
    auth: 'none',
    localOnly: true,
    access: {},
  },
] as const satisfies readonly HttpRoute[];

export const WEBSOCKET_ROUTES: WebSocketRoute[] = [
  // Reads the stream: a connection to an unknown or ended stream is refused at the upgrade.
  {
    name: 'WsConnect',
    routeKey: '$connect',
    handler: 'functions/ws/connect.ts',
    returnResponse: false,
    // Nudges the broadcaster so that the room's "watching" count goes out without waiting for a gift.
    access: { connections: 'readWrite', ledger: 'read', sendsTo: ['giftEvents'] },
  },
  {
    name: 'WsDisconnect',
    routeKey: '$disconnect',
    handler: 'functions/ws/disconnect.ts',
    returnResponse: false,
    access: { connections: 'readWrite', sendsTo: ['giftEvents'] },
  },
  { name: 'WsDefault', routeKey: '$default', handler: 'functions/ws/default.ts', returnResponse: true, access: {} },
  { name: 'WsPing', routeKey: 'ping', handler: 'functions/ws/ping.ts', returnResponse: true, access: {} },
  {
    name: 'WsSendGift',
    routeKey: 'sendGift',
    handler: 'functions/ws/send-gift.ts',
    returnResponse: true,
    access: { ledger: 'readWrite', connections: 'read', sendsTo: ['giftEvents'] },
  },
  {
    name: 'WsJoin',
    routeKey: 'join',
    handler: 'functions/ws/join.ts',
    returnResponse: true,
    access: { ledger: 'read', connections: 'readWrite' },
  },
];

/** The name of each HTTP route of the table. */
export type HttpRouteName = (typeof DECLARED_HTTP_ROUTES)[number]['name'];
/** One route's declaration, literal types kept. */
export type DeclaredHttpRoute<Name extends HttpRouteName> = Extract<
  (typeof DECLARED_HTTP_ROUTES)[number],
  { name: Name }
>;

/** The declaration a handler is built from: `httpRoute(declaredHttpRoute('WalletGet'), { ... })`. */
export function declaredHttpRoute<Name extends HttpRouteName>(name: Name): DeclaredHttpRoute<Name> {
  const declared = DECLARED_HTTP_ROUTES.find((route): route is DeclaredHttpRoute<Name> => route.name === name);
  if (!declared) throw new Error(`The route table declares no HTTP route named ${name}`);
  return declared;
}

// Every authenticated HTTP route and every WebSocket action counts its callers' requests in the
// shared rate-limit counters (shared/http/rate-limit.ts); $connect and $disconnect are not actions.
export const HTTP_ROUTES: HttpRoute[] = DECLARED_HTTP_ROUTES.map((route) => ({
  ...route,
  access: route.auth === 'jwt' ? { ...route.access, rateLimit: true } : route.access,
}));
for (const route of WEBSOCKET_ROUTES)
  if (route.routeKey !== '$connect' && route.routeKey !== '$disconnect')
    route.access = { ...route.access, rateLimit: true };

/** The $connect REQUEST authorizer (token and streamId from the query string). */
export const WEBSOCKET_AUTHORIZER = {
  name: 'WsAuthorizer',
  handler: 'functions/ws/authorizer.ts',
  identitySource: ['route.request.querystring.token'],
  // Verifies the token only; the stream is checked by $connect.
  access: {} satisfies Access as Access,
};

/** The Event API's Lambda authorizer (connect and subscribe); the local stand-in runs the same file. */
export const EVENT_API_AUTHORIZER = {
  name: 'EventApiAuthorizer',
  handler: 'functions/events/authorizer.ts',
  // Reads the stream: only a live room's channel may be subscribed to.
  access: { ledger: 'read' } satisfies Access as Access,
};

/** The payout worker's timeout: a few transfers of at most a Stripe timeout each (stripe-client.ts). */
const PAYOUT_WORKER_TIMEOUT_SECONDS = 60;
/** The gift broadcaster's timeout: a few windows of sequencing and fan-out per stream. */
const GIFT_BROADCASTER_TIMEOUT_SECONDS = 30;

export const QUEUES: QueueDefinition[] = [
  // Visibility 6x the worker's timeout (AWS guidance); five receives, then the DLQ for a human.
  {
    logicalName: 'payouts',
    fifo: false,
    visibilityTimeoutSeconds: 6 * PAYOUT_WORKER_TIMEOUT_SECONDS,
    deadLetter: { maxReceiveCount: 5 },
  },
  // FIFO, grouped by stream: one sequencer per stream (docs/DESIGN.md, Live fan-out). Nudges only; the ledger is the outbox.
  {
    logicalName: 'giftEvents',
    fifo: true,
    visibilityTimeoutSeconds: 6 * GIFT_BROADCASTER_TIMEOUT_SECONDS,
    deadLetter: { maxReceiveCount: 5 },
  },
];

export const QUEUE_CONSUMERS: QueueConsumer[] = [
  {
    name: 'PayoutWorker',
    queue: 'payouts',
    handler: 'functions/queue/payout-worker.ts',
    batchSize: 10,
    // No window: a payout should be paid within seconds (docs/API.md), and batches form under load anyway.
    maximumBatchingWindowMs: 0,
    // Records run one at a time per invocation: 5 invocations keep transfers well under Stripe's 25/s.
    maxConcurrency: 5,
    timeoutSeconds: PAYOUT_WORKER_TIMEOUT_SECONDS,
    access: { ledger: 'readWrite', stripe: true, connections: 'read', postsToConnections: true },
  },
  {
    name: 'GiftBroadcaster',
    queue: 'giftEvents',
    handler: 'functions/queue/broadcast-gifts.ts',
    // FIFO: at most 10 per batch and no batching window (Lambda's rules); coalescing is the broadcaster's own window.
    batchSize: 10,
    maximumBatchingWindowMs: 0,
    // Streams are broadcast in parallel up to this; one stream is never in two invocations (its message group).
    maxConcurrency: 10,
    timeoutSeconds: GIFT_BROADCASTER_TIMEOUT_SECONDS,
    access: { ledger: 'readWrite', connections: 'readWrite', postsToConnections: true, sendsTo: ['giftEvents'] },
  },
];

export const SCHEDULES: Schedule[] = [
  // Recharges pending 24 h expire; a 15-minute sweep keeps the lag small at 96 runs a day.
  // Payouts outbox: re-sends payouts left `requested` or stuck `processing` (docs/API.md: paid within 60 s of a restart).
  {
    name: 'SweepPayouts',
    handler: 'functions/scheduled/sweep-payouts.ts',
    everySeconds: 15,
    timeoutSeconds: 60,
    access: { ledger: 'readWrite', sendsTo: ['payouts'] },
  },
  // Gift broadcast outbox: nudges streams whose gifts lost their nudge (a crash after the commit).
  {
    name: 'SweepGiftBroadcasts',
    handler: 'functions/scheduled/sweep-gift-broadcasts.ts',
    everySeconds: 30,
    timeoutSeconds: 60,
    access: { ledger: 'readWrite', sendsTo: ['giftEvents'] },
  },
  {
    name: 'ExpireRecharges',
    handler: 'functions/scheduled/expire-recharges.ts',
    everySeconds: 900,
    timeoutSeconds: 60,
    access: { ledger: 'readWrite', stripe: true },
  },
];

export function cloudHttpRoutes(): HttpRoute[] {
  return HTTP_ROUTES.filter((route) => !route.localOnly);
}

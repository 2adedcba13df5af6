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
}

export interface HttpRoute {
  name: string;
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  handler: string;
  /** 'jwt': behind the JWT authorizer; 'none': public (catalog, webhooks, /dev). */
  auth: 'jwt' | 'none';
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

export interface QueueDefinition {
  logicalName: QueueName;
  fifo: boolean;
  /** At least 6x the consumer's timeout (AWS guidance for SQS event sources). */
  visibilityTimeoutSeconds: number;
  deadLetter: { maxReceiveCount: number };
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

export const HTTP_ROUTES: HttpRoute[] = [
  { name: 'Health', method: 'GET', path: '/health', handler: 'functions/http/health.ts', auth: 'none', access: {} },
  { name: 'CatalogPackages', method: 'GET', path: '/v1/packages', handler: 'functions/http/catalog-packages.ts', auth: 'none', access: {} },
  { name: 'CatalogGifts', method: 'GET', path: '/v1/gifts', handler: 'functions/http/catalog-gifts.ts', auth: 'none', access: {} },
  { name: 'WalletGet', method: 'GET', path: '/v1/wallet', handler: 'functions/http/wallet-get.ts', auth: 'jwt', access: read },
  {
    name: 'WalletTransactions',
    method: 'GET',
    path: '/v1/wallet/transactions',
    handler: 'functions/http/wallet-transactions.ts',
    auth: 'jwt',
    access: read,
  },
  { name: 'DevTokens', method: 'POST', path: '/dev/tokens', handler: 'functions/http/dev-tokens.ts', auth: 'none', localOnly: true, access: {} },
];

export const WEBSOCKET_ROUTES: WebSocketRoute[] = [
  { name: 'WsConnect', routeKey: '$connect', handler: 'functions/ws/connect.ts', returnResponse: false, access: { connections: 'readWrite' } },
  { name: 'WsDisconnect', routeKey: '$disconnect', handler: 'functions/ws/disconnect.ts', returnResponse: false, access: { connections: 'readWrite' } },
  { name: 'WsDefault', routeKey: '$default', handler: 'functions/ws/default.ts', returnResponse: true, access: {} },
  { name: 'WsPing', routeKey: 'ping', handler: 'functions/ws/ping.ts', returnResponse: true, access: {} },
];

/** The $connect REQUEST authorizer (token and streamId from the query string). */
export const WEBSOCKET_AUTHORIZER = { name: 'WsAuthorizer', handler: 'functions/ws/authorizer.ts', identitySource: ['route.request.querystring.token'] };

export const QUEUES: QueueDefinition[] = [];

export const QUEUE_CONSUMERS: QueueConsumer[] = [];

export const SCHEDULES: Schedule[] = [];

export function cloudHttpRoutes(): HttpRoute[] {
  return HTTP_ROUTES.filter((route) => !route.localOnly);
}

import { timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generate } from 'selfsigned';
import { WebSocketServer, type WebSocket } from 'ws';
import * as z from 'zod';
import { isValidChannelPath, ROOMS_NAMESPACE } from '../../shared/events/channels';
import type { EventApiAuthorizerResult } from '../../shared/events/authorize';
import { MAX_EVENT_BYTES, MAX_EVENTS_PER_PUBLISH } from '../../shared/events/publisher';

/**
 * AWS AppSync Events on this machine, speaking its documented protocol so that AWS's own client
 * (the `events` client of aws-amplify) works against it unchanged:
 * - HTTPS `POST /event` `{ channel, events: [<JSON string>] }` publishes (at most 5 events of
 *   at most 240 KB each); only the broadcaster's key may publish (on AWS: IAM);
 * - WSS `/event/realtime` with the subprotocols `aws-appsync-event-ws` and
 *   `header-<base64url JSON of the auth headers>`; `connection_init` is answered by
 *   `connection_ack` (with `connectionTimeoutMs`) or `connection_error`, then `ka` keep-alives;
 * - `subscribe` -> `subscribe_success` / `subscribe_error`, then `data` for each event;
 *   `unsubscribe` -> `unsubscribe_success`; a client's `publish` -> `publish_error`.
 * Connect and subscribe are decided by the Lambda authorizer the CDK app deploys
 * (functions/events/authorizer.ts), called in-process as AppSync would call it.
 * Amplify expects TLS, so the stand-in serves a certificate generated at start for 127.0.0.1.
 */

/** The subprotocol AppSync Events answers with. */
export const EVENT_WS_PROTOCOL = 'aws-appsync-event-ws';
/** AppSync's documented keep-alive: the client drops a connection silent for connectionTimeoutMs. */
export const CONNECTION_TIMEOUT_MS = 300_000;
export const DEFAULT_KEEP_ALIVE_MS = 60_000;
/** A request body larger than 5 events of 240 KB (and their JSON) is refused unread. */
const MAX_PUBLISH_BODY_BYTES = MAX_EVENTS_PER_PUBLISH * MAX_EVENT_BYTES * 2;

export type EventApiAuthorizer = (event: unknown) => Promise<EventApiAuthorizerResult>;

export interface EventApiStandInOptions {
  port: number;
  authorizer: EventApiAuthorizer;
  /** The only credential that may publish (the broadcaster's; IAM on AWS). */
  publishKey: string;
  keepAliveMs?: number;
}

export interface EventApiStandIn {
  /** Amplify's `API.Events.endpoint` and the publisher's URL: https://127.0.0.1:<port>/event */
  httpUrl: string;
  /** wss://127.0.0.1:<port>/event/realtime */
  realtimeUrl: string;
  /** The certificate clients must trust (PEM). */
  certificate: string;
  /** Subscriptions open now, per channel (tests). */
  subscribers(channel: string): number;
  stop(): Promise<void>;
}

const publishBody = z.object({
  channel: z.string().min(1).max(1024),
  events: z.array(z.string()).min(1).max(MAX_EVENTS_PER_PUBLISH),
});

const clientMessage = z.discriminatedUnion('type', [
  z.object({ type: z.literal('connection_init') }),
  z.object({
    type: z.literal('subscribe'),
    id: z.string().min(1).max(128),
    channel: z.string().min(1).max(1024),
    authorization: z.record(z.string(), z.string()).optional(),
  }),
  z.object({ type: z.literal('unsubscribe'), id: z.string().min(1).max(128) }),
  z.object({ type: z.literal('publish'), id: z.string().min(1).max(128) }),
]);

const authHeader = z.object({ Authorization: z.string().optional() }).loose();

function error(errorType: string, message: string, errorCode?: number) {
  return [{ errorType, message, ...(errorCode !== undefined && { errorCode }) }];
}

function sameKey(given: string | undefined, expected: string): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The auth headers from the `header-<base64url>` subprotocol, or undefined when absent or malformed. */
export function headersFromSubprotocols(protocols: Set<string>): z.infer<typeof authHeader> | undefined {
  for (const protocol of protocols) {
    if (!protocol.startsWith('header-')) continue;
    try {
      const parsed = authHeader.safeParse(
        JSON.parse(Buffer.from(protocol.slice('header-'.length), 'base64url').toString()),
      );
      return parsed.success ? parsed.data : undefined;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

interface Connection {
  socket: WebSocket;
  token: string | undefined;
  acknowledged: boolean;
  /** This connection's subscriptions: subscription id to channel. */
  subscriptions: Map<string, string>;
  keepAlive?: NodeJS.Timeout;
}

/**
 * Who listens to which channel: a publish is delivered to every subscription of its channel, and
 * a closed connection leaves no subscriber behind.
 */
class Subscriptions {
  /** Subscribers by channel: connection and its subscription ids there. */
  private readonly byChannel = new Map<string, Map<Connection, Set<string>>>();

  add(connection: Connection, id: string, channel: string): void {
    connection.subscriptions.set(id, channel);
    const subscribers = this.byChannel.get(channel) ?? new Map<Connection, Set<string>>();
    subscribers.set(connection, (subscribers.get(connection) ?? new Set()).add(id));
    this.byChannel.set(channel, subscribers);
  }

  /** False when the connection has no subscription of that id. */
  remove(connection: Connection, id: string): boolean {
    const channel = connection.subscriptions.get(id);
    if (channel === undefined) return false;
    connection.subscriptions.delete(id);
    const subscribers = this.byChannel.get(channel);
    const ids = subscribers?.get(connection);
    ids?.delete(id);
    if (ids && ids.size === 0) subscribers?.delete(connection);
    if (subscribers && subscribers.size === 0) this.byChannel.delete(channel);
    return true;
  }

  removeAll(connection: Connection): void {
    for (const id of [...connection.subscriptions.keys()]) this.remove(connection, id);
  }

  deliver(channel: string, events: string[]): void {
    // Each event is escaped once, not once per subscriber: only the subscription id differs.
    const escaped = events.map((event) => JSON.stringify(event));
    for (const [connection, ids] of this.byChannel.get(channel) ?? []) {
      for (const id of ids)
        for (const event of escaped)
          connection.socket.send(`{"type":"data","id":${JSON.stringify(id)},"event":${event}}`);
    }
  }

  count(channel: string): number {
    return [...(this.byChannel.get(channel)?.values() ?? [])].reduce((sum, ids) => sum + ids.size, 0);
  }
}

/** A certificate for 127.0.0.1 and localhost, made at start: Amplify only speaks TLS to AppSync. */
function selfSignedCertificate() {
  return generate([{ name: 'commonName', value: '127.0.0.1' }], {
    keyType: 'ec',
    extensions: [
      { name: 'basicConstraints', cA: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 7, ip: '127.0.0.1' },
          { type: 2, value: 'localhost' },
        ],
      },
    ],
  });
}

// ---- HTTPS: publishing ----

function answer(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(JSON.stringify(body));
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** The publish request, or why AppSync would refuse it with a 400. */
function checkPublish(raw: string): { publish: z.infer<typeof publishBody> } | { refusal: string } {
  let parsed: z.infer<typeof publishBody>;
  try {
    parsed = publishBody.parse(JSON.parse(raw));
  } catch {
    return { refusal: 'Invalid publish request.' };
  }
  const namespace = parsed.channel.split('/')[1];
  const valid =
    isValidChannelPath(parsed.channel, { wildcard: false }) &&
    namespace === ROOMS_NAMESPACE &&
    parsed.events.every((event) => Buffer.byteLength(event) <= MAX_EVENT_BYTES && isJson(event));
  return valid ? { publish: parsed } : { refusal: 'Invalid channel or events.' };
}

function onPublish(
  options: EventApiStandInOptions,
  subscriptions: Subscriptions,
  request: IncomingMessage,
  response: ServerResponse,
  raw: string,
): void {
  const key = request.headers['x-api-key'];
  if (!sameKey(typeof key === 'string' ? key : undefined, options.publishKey)) {
    answer(response, 401, { errors: error('UnauthorizedException', 'You are not authorized to publish.', 401) });
    return;
  }
  const checked = checkPublish(raw);
  if ('refusal' in checked) {
    answer(response, 400, { errors: error('BadRequestException', checked.refusal, 400) });
    return;
  }
  const { channel, events } = checked.publish;
  subscriptions.deliver(channel, events);
  answer(response, 200, {
    failed: [],
    successful: events.map((_, index) => ({ identifier: `${Date.now()}-${index}`, index })),
  });
}

/** The HTTPS request listener: the certificate page and `POST /event`, its body read under a limit. */
function publishListener(options: EventApiStandInOptions, subscriptions: Subscriptions): RequestListener {
  return (request, response) => {
    if (request.method === 'GET' && request.url === '/') {
      // Where a person opens the stand-in once to accept its generated certificate (npm start says so).
      response.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      response.end('AppSync Events stand-in: this browser now trusts its certificate. Go back to the demo page.\n');
      return;
    }
    if (request.method !== 'POST' || request.url?.split('?')[0] !== '/event') {
      answer(response, 404, { errors: error('NotFoundException', 'Not found.', 404) });
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_PUBLISH_BODY_BYTES) {
        answer(response, 413, { errors: error('BadRequestException', 'Request too large.', 413) });
        request.destroy();
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => {
      if (!response.headersSent) onPublish(options, subscriptions, request, response, Buffer.concat(chunks).toString());
    });
  };
}

// ---- WSS: the realtime protocol ----

interface Realtime {
  authorizer: EventApiAuthorizer;
  subscriptions: Subscriptions;
  keepAliveMs: number;
}

function sendMessage(connection: Connection, message: unknown): void {
  if (connection.socket.readyState === connection.socket.OPEN) connection.socket.send(JSON.stringify(message));
}

async function authorize(
  authorizer: EventApiAuthorizer,
  token: string | undefined,
  operation: string,
  channel?: string,
): Promise<boolean> {
  try {
    const result = await authorizer({
      authorizationToken: token,
      requestContext: {
        operation,
        ...(channel !== undefined && { channel, channelNamespaceName: channel.split('/')[1] }),
      },
    });
    return result.isAuthorized === true;
  } catch {
    // AppSync treats an authorizer that fails as a refusal.
    return false;
  }
}

async function onConnectionInit(realtime: Realtime, connection: Connection): Promise<void> {
  // Connect authorization: an expired or forged token ends here, before any subscription.
  if (!(await authorize(realtime.authorizer, connection.token, 'EVENT_CONNECT'))) {
    sendMessage(connection, { type: 'connection_error', errors: error('UnauthorizedException', 'Unauthorized', 401) });
    connection.socket.close(4401, 'Unauthorized');
    return;
  }
  connection.acknowledged = true;
  sendMessage(connection, { type: 'connection_ack', connectionTimeoutMs: CONNECTION_TIMEOUT_MS });
  connection.keepAlive = setInterval(() => sendMessage(connection, { type: 'ka' }), realtime.keepAliveMs);
  connection.keepAlive.unref();
}

type SubscribeMessage = Extract<z.infer<typeof clientMessage>, { type: 'subscribe' }>;

async function onSubscribe(realtime: Realtime, connection: Connection, message: SubscribeMessage): Promise<void> {
  const refuse = (errorType: string, text: string) =>
    sendMessage(connection, { type: 'subscribe_error', id: message.id, errors: error(errorType, text) });
  if (connection.subscriptions.has(message.id)) {
    refuse('BadRequestException', 'Subscription id already in use.');
    return;
  }
  if (!isValidChannelPath(message.channel, { wildcard: true }) || message.channel.split('/')[1] !== ROOMS_NAMESPACE) {
    refuse('BadRequestException', 'Invalid channel.');
    return;
  }
  const token = message.authorization?.Authorization ?? connection.token;
  if (!(await authorize(realtime.authorizer, token, 'EVENT_SUBSCRIBE', message.channel))) {
    refuse('UnauthorizedException', 'You are not authorized to subscribe to this channel.');
    return;
  }
  realtime.subscriptions.add(connection, message.id, message.channel);
  sendMessage(connection, { type: 'subscribe_success', id: message.id });
}

async function onMessage(realtime: Realtime, connection: Connection, raw: string): Promise<void> {
  let message: z.infer<typeof clientMessage>;
  try {
    message = clientMessage.parse(JSON.parse(raw));
  } catch {
    sendMessage(connection, { type: 'error', errors: error('BadRequestException', 'Unknown or malformed message.') });
    return;
  }
  if (message.type === 'connection_init') return onConnectionInit(realtime, connection);
  if (!connection.acknowledged) {
    sendMessage(connection, { type: 'error', errors: error('BadRequestException', 'connection_init first.') });
    return;
  }
  if (message.type === 'publish') {
    // The rooms namespace publishes with IAM only: no client token can publish.
    sendMessage(connection, {
      type: 'publish_error',
      id: message.id,
      errors: error('UnauthorizedException', 'You are not authorized to publish to this channel.'),
    });
    return;
  }
  if (message.type === 'unsubscribe') {
    const known = realtime.subscriptions.remove(connection, message.id);
    sendMessage(connection, {
      type: known ? 'unsubscribe_success' : 'unsubscribe_error',
      id: message.id,
      ...(!known && { errors: error('UnknownOperationError', 'Unknown subscription id.') }),
    });
    return;
  }
  return onSubscribe(realtime, connection, message);
}

/** Serves `/event/realtime` upgrades that ask for the AppSync subprotocol; refuses the rest (400). */
function realtimeEndpoint(server: Server, realtime: Realtime): WebSocketServer {
  const wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (protocols) => (protocols.has(EVENT_WS_PROTOCOL) ? EVENT_WS_PROTOCOL : false),
  });
  server.on('upgrade', (request, socket, head) => {
    const protocols = new Set(
      String(request.headers['sec-websocket-protocol'] ?? '')
        .split(',')
        .map((protocol) => protocol.trim())
        .filter((protocol) => protocol.length > 0),
    );
    if (request.url?.split('?')[0] !== '/event/realtime' || !protocols.has(EVENT_WS_PROTOCOL)) {
      socket.end('HTTP/1.1 400 Bad Request\r\n\r\n');
      return;
    }
    const headers = headersFromSubprotocols(protocols);
    wss.handleUpgrade(request, socket, head, (ws) => {
      const connection: Connection = {
        socket: ws,
        token: headers?.Authorization,
        acknowledged: false,
        subscriptions: new Map(),
      };
      ws.on('message', (data) => void onMessage(realtime, connection, data.toString()));
      ws.on('close', () => {
        clearInterval(connection.keepAlive);
        realtime.subscriptions.removeAll(connection);
      });
    });
  });
  return wss;
}

export async function startEventApiStandIn(options: EventApiStandInOptions): Promise<EventApiStandIn> {
  const pems = await selfSignedCertificate();
  const subscriptions = new Subscriptions();
  const server: Server = createServer({ key: pems.private, cert: pems.cert }, publishListener(options, subscriptions));
  const wss = realtimeEndpoint(server, {
    authorizer: options.authorizer,
    subscriptions,
    keepAliveMs: options.keepAliveMs ?? DEFAULT_KEEP_ALIVE_MS,
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    httpUrl: `https://127.0.0.1:${port}/event`,
    realtimeUrl: `wss://127.0.0.1:${port}/event/realtime`,
    certificate: pems.cert,
    subscribers: (channel) => subscriptions.count(channel),
    async stop() {
      for (const client of wss.clients) client.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

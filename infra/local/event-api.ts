import { timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
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
  subscriptions: Map<string, string>;
  keepAlive?: NodeJS.Timeout;
}

export async function startEventApiStandIn(options: EventApiStandInOptions): Promise<EventApiStandIn> {
  const pems = await generate([{ name: 'commonName', value: '127.0.0.1' }], {
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
  /** Subscribers by channel: connection and subscription id. */
  const channels = new Map<string, Map<Connection, Set<string>>>();
  const keepAliveMs = options.keepAliveMs ?? DEFAULT_KEEP_ALIVE_MS;

  const deliver = (channel: string, events: string[]): void => {
    // Each event is escaped once, not once per subscriber: only the subscription id differs.
    const escaped = events.map((event) => JSON.stringify(event));
    for (const [connection, ids] of channels.get(channel) ?? []) {
      for (const id of ids)
        for (const event of escaped)
          connection.socket.send(`{"type":"data","id":${JSON.stringify(id)},"event":${event}}`);
    }
  };

  const answer = (response: ServerResponse, status: number, body: unknown): void => {
    response.writeHead(status, { 'content-type': 'application/json' });
    response.end(JSON.stringify(body));
  };

  const onPublish = (request: IncomingMessage, response: ServerResponse, raw: string): void => {
    const key = request.headers['x-api-key'];
    if (!sameKey(typeof key === 'string' ? key : undefined, options.publishKey)) {
      answer(response, 401, { errors: error('UnauthorizedException', 'You are not authorized to publish.', 401) });
      return;
    }
    let parsed: z.infer<typeof publishBody>;
    try {
      parsed = publishBody.parse(JSON.parse(raw));
    } catch {
      answer(response, 400, { errors: error('BadRequestException', 'Invalid publish request.', 400) });
      return;
    }
    const namespace = parsed.channel.split('/')[1];
    const oversized = parsed.events.some((event) => Buffer.byteLength(event) > MAX_EVENT_BYTES);
    const invalidJson = parsed.events.some((event) => {
      try {
        JSON.parse(event);
        return false;
      } catch {
        return true;
      }
    });
    if (
      !isValidChannelPath(parsed.channel, { wildcard: false }) ||
      namespace !== ROOMS_NAMESPACE ||
      oversized ||
      invalidJson
    ) {
      answer(response, 400, { errors: error('BadRequestException', 'Invalid channel or events.', 400) });
      return;
    }
    deliver(parsed.channel, parsed.events);
    answer(response, 200, {
      failed: [],
      successful: parsed.events.map((_, index) => ({ identifier: `${Date.now()}-${index}`, index })),
    });
  };

  const server: Server = createServer({ key: pems.private, cert: pems.cert }, (request, response) => {
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
      if (!response.headersSent) onPublish(request, response, Buffer.concat(chunks).toString());
    });
  });

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
      ws.on('message', (data) => void onMessage(connection, data.toString()));
      ws.on('close', () => closeConnection(connection));
    });
  });

  const send = (connection: Connection, message: unknown): void => {
    if (connection.socket.readyState === connection.socket.OPEN) connection.socket.send(JSON.stringify(message));
  };

  const authorize = async (token: string | undefined, operation: string, channel?: string): Promise<boolean> => {
    try {
      const result = await options.authorizer({
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
  };

  const unsubscribe = (connection: Connection, id: string): boolean => {
    const channel = connection.subscriptions.get(id);
    if (channel === undefined) return false;
    connection.subscriptions.delete(id);
    const subscribers = channels.get(channel);
    const ids = subscribers?.get(connection);
    ids?.delete(id);
    if (ids && ids.size === 0) subscribers?.delete(connection);
    if (subscribers && subscribers.size === 0) channels.delete(channel);
    return true;
  };

  const closeConnection = (connection: Connection): void => {
    clearInterval(connection.keepAlive);
    for (const id of [...connection.subscriptions.keys()]) unsubscribe(connection, id);
  };

  const onMessage = async (connection: Connection, raw: string): Promise<void> => {
    let message: z.infer<typeof clientMessage>;
    try {
      message = clientMessage.parse(JSON.parse(raw));
    } catch {
      send(connection, { type: 'error', errors: error('BadRequestException', 'Unknown or malformed message.') });
      return;
    }
    if (message.type === 'connection_init') {
      // Connect authorization: an expired or forged token ends here, before any subscription.
      if (!(await authorize(connection.token, 'EVENT_CONNECT'))) {
        send(connection, { type: 'connection_error', errors: error('UnauthorizedException', 'Unauthorized', 401) });
        connection.socket.close(4401, 'Unauthorized');
        return;
      }
      connection.acknowledged = true;
      send(connection, { type: 'connection_ack', connectionTimeoutMs: CONNECTION_TIMEOUT_MS });
      connection.keepAlive = setInterval(() => send(connection, { type: 'ka' }), keepAliveMs);
      connection.keepAlive.unref();
      return;
    }
    if (!connection.acknowledged) {
      send(connection, { type: 'error', errors: error('BadRequestException', 'connection_init first.') });
      return;
    }
    if (message.type === 'publish') {
      // The rooms namespace publishes with IAM only: no client token can publish.
      send(connection, {
        type: 'publish_error',
        id: message.id,
        errors: error('UnauthorizedException', 'You are not authorized to publish to this channel.'),
      });
      return;
    }
    if (message.type === 'unsubscribe') {
      const known = unsubscribe(connection, message.id);
      send(connection, {
        type: known ? 'unsubscribe_success' : 'unsubscribe_error',
        id: message.id,
        ...(!known && { errors: error('UnknownOperationError', 'Unknown subscription id.') }),
      });
      return;
    }
    const refuse = (errorType: string, text: string) =>
      send(connection, { type: 'subscribe_error', id: message.id, errors: error(errorType, text) });
    if (connection.subscriptions.has(message.id)) {
      refuse('BadRequestException', 'Subscription id already in use.');
      return;
    }
    if (!isValidChannelPath(message.channel, { wildcard: true }) || message.channel.split('/')[1] !== ROOMS_NAMESPACE) {
      refuse('BadRequestException', 'Invalid channel.');
      return;
    }
    const token = message.authorization?.Authorization ?? connection.token;
    if (!(await authorize(token, 'EVENT_SUBSCRIBE', message.channel))) {
      refuse('UnauthorizedException', 'You are not authorized to subscribe to this channel.');
      return;
    }
    connection.subscriptions.set(message.id, message.channel);
    const subscribers = channels.get(message.channel) ?? new Map<Connection, Set<string>>();
    subscribers.set(connection, (subscribers.get(connection) ?? new Set()).add(message.id));
    channels.set(message.channel, subscribers);
    send(connection, { type: 'subscribe_success', id: message.id });
  };

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    httpUrl: `https://127.0.0.1:${port}/event`,
    realtimeUrl: `wss://127.0.0.1:${port}/event/realtime`,
    certificate: pems.cert,
    subscribers: (channel) => [...(channels.get(channel)?.values() ?? [])].reduce((sum, ids) => sum + ids.size, 0),
    async stop() {
      for (const client of wss.clients) client.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

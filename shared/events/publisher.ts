import { readFileSync } from 'node:fs';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import { NodeSha256 } from '../adapters/connections-http';
import { roomChannel } from './channels';

/**
 * Publishes a room's frames to its Event API channel: `POST https://<http domain>/event` with
 * `{ channel, events: [<JSON string>, ...] }`, signed with SigV4 (service `appsync`) on AWS, or
 * with the local stand-in's key (`x-api-key`) on this machine. One frame is one event, so a
 * frame costs one publish whatever the room's size (docs/DESIGN.md, "Rooms beyond @connections").
 */

/** AppSync Events: at most 5 events in one publish request (HTTP or WebSocket). */
export const MAX_EVENTS_PER_PUBLISH = 5;
/** AppSync Events: one event (its JSON string) is at most 240 KB; a larger one is dropped by AppSync. */
export const MAX_EVENT_BYTES = 240 * 1024;
/** A publish that has not been answered in this long is abandoned (viewers catch up by seq). */
export const PUBLISH_TIMEOUT_MS = 5_000;

export class EventTooLargeError extends Error {
  constructor(bytes: number) {
    super(`an event of ${bytes} bytes is over the Event API's ${MAX_EVENT_BYTES}-byte limit`);
    this.name = 'EventTooLargeError';
  }
}

/** Cuts serialized events into publish requests of at most MAX_EVENTS_PER_PUBLISH, in order. */
export function batchesForPublish(events: string[]): string[][] {
  for (const event of events) {
    const bytes = Buffer.byteLength(event);
    if (bytes > MAX_EVENT_BYTES) throw new EventTooLargeError(bytes);
  }
  const batches: string[][] = [];
  for (let start = 0; start < events.length; start += MAX_EVENTS_PER_PUBLISH)
    batches.push(events.slice(start, start + MAX_EVENTS_PER_PUBLISH));
  return batches;
}

export interface RoomChannelPublisher {
  /** Publishes the frames (each one event) to the room's channel; resolves with the requests made. */
  publishFrames(streamId: string, frames: unknown[]): Promise<{ requests: number }>;
}

export type EventApiAuth =
  | { kind: 'iam'; region: string; credentials?: AwsCredentialIdentityProvider }
  | { kind: 'apiKey'; key: string };

export class EventApiPublisher implements RoomChannelPublisher {
  private readonly url: URL;
  private readonly agent: HttpsAgent;
  private readonly signer: SignatureV4 | undefined;

  constructor(
    httpUrl: string,
    private readonly auth: EventApiAuth,
    options: { ca?: string } = {},
  ) {
    this.url = new URL(httpUrl);
    this.agent = new HttpsAgent({ keepAlive: true, maxSockets: 64, ...(options.ca && { ca: options.ca }) });
    this.signer =
      auth.kind === 'iam'
        ? new SignatureV4({
            service: 'appsync',
            region: auth.region,
            credentials: auth.credentials ?? defaultProvider(),
            sha256: NodeSha256,
          })
        : undefined;
  }

  async publishFrames(streamId: string, frames: unknown[]): Promise<{ requests: number }> {
    const channel = roomChannel(streamId);
    if (channel === undefined || frames.length === 0) return { requests: 0 };
    const batches = batchesForPublish(frames.map((frame) => JSON.stringify(frame)));
    for (const events of batches) await this.post(JSON.stringify({ channel, events }));
    return { requests: batches.length };
  }

  private async headers(body: string): Promise<Record<string, string>> {
    const base: Record<string, string> = {
      host: this.url.host,
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(body)),
    };
    if (this.auth.kind === 'apiKey') return { ...base, 'x-api-key': this.auth.key };
    const signed = await (this.signer as SignatureV4).sign({
      method: 'POST',
      protocol: this.url.protocol,
      hostname: this.url.hostname,
      ...(this.url.port && { port: Number(this.url.port) }),
      path: this.url.pathname,
      headers: base,
      body,
    });
    return signed.headers;
  }

  private async post(body: string): Promise<void> {
    const headers = await this.headers(body);
    await new Promise<void>((resolve, reject) => {
      const request = httpsRequest(
        this.url,
        { method: 'POST', headers, agent: this.agent, timeout: PUBLISH_TIMEOUT_MS },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => {
            const status = response.statusCode ?? 0;
            if (status >= 200 && status < 300) resolve();
            else
              reject(
                new Error(`Event API publish answered ${status}: ${Buffer.concat(chunks).toString().slice(0, 200)}`),
              );
          });
          response.on('error', reject);
        },
      );
      request.on('timeout', () => request.destroy(new Error('Event API publish timed out')));
      request.on('error', reject);
      request.end(body);
    });
  }
}

let shared: RoomChannelPublisher | null | undefined;

/**
 * The publisher the broadcaster uses, from the environment: EVENT_API_HTTP_URL (none: no Event
 * API, frames go through @connections only), EVENT_API_PUBLISH_KEY (local stand-in only; on AWS
 * the function's IAM role signs) and EVENT_API_CA_FILE (the stand-in's generated certificate).
 */
export function roomChannelPublisher(): RoomChannelPublisher | undefined {
  if (shared !== undefined) return shared ?? undefined;
  const url = process.env.EVENT_API_HTTP_URL;
  if (!url) {
    shared = null;
    return undefined;
  }
  const key = process.env.EVENT_API_PUBLISH_KEY;
  const caFile = process.env.EVENT_API_CA_FILE;
  shared = new EventApiPublisher(
    url,
    key ? { kind: 'apiKey', key } : { kind: 'iam', region: process.env.AWS_REGION ?? 'us-east-1' },
    caFile ? { ca: readFileSync(caFile, 'utf8') } : {},
  );
  return shared;
}

/** Forget the publisher, so the next use builds it from the environment (the local stack sets it after handlers may have loaded). */
export function forgetRoomChannelPublisher(): void {
  shared = undefined;
}

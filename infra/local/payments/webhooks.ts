import { createHmac } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import Stripe from 'stripe';
import { newId, unixSeconds, type State, type StateStore, type StripeEvent } from './state';

export interface DeliveryResult {
  eventId: string;
  delivered: boolean;
  /** The receiver's HTTP status; absent when it could not be reached. */
  status?: number;
}

export type LogSink = (line: Record<string, unknown>) => void;

/** Events are rendered at the API version of the SDK the app is built with, as an endpoint pinned to it would get. */
export const EVENT_API_VERSION: string = Stripe.API_VERSION;

/*
 * Stripe retries for 3 days; locally a receiver that is down for more than half a minute is a bug
 * to see, not to wait for. 8 attempts from 250 ms doubling to a 10 s cap span about 26 s.
 */
export const MAX_DELIVERY_ATTEMPTS = 8;
const FIRST_RETRY_DELAY_MS = 250;
const MAX_RETRY_DELAY_MS = 10_000;
/** A receiver that has not answered by then is treated as down; the attempt is retried. */
const DELIVERY_TIMEOUT_MS = 10_000;

/** Equal jitter: retries of many events spread out, yet none comes back sooner than half its backoff. */
function retryDelayMs(failedAttempts: number): number {
  const backoffMs = Math.min(MAX_RETRY_DELAY_MS, FIRST_RETRY_DELAY_MS * 2 ** (failedAttempts - 1));
  return Math.round(backoffMs / 2 + (Math.random() * backoffMs) / 2);
}

/** Stripe's scheme: `t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<payload>">`, verified by `stripe.webhooks.constructEvent`. */
export function signatureHeader(payload: string, secret: string, timestampSeconds: number): string {
  const signature = createHmac('sha256', secret).update(`${timestampSeconds}.${payload}`, 'utf8').digest('hex');
  return `t=${timestampSeconds},v1=${signature}`;
}

interface AttemptOutcome {
  delivered: boolean;
  status?: number;
  error?: string;
}

/**
 * Sends events to the webhook URL. Pending deliveries live in the persisted state, so a restart
 * resumes them; timers and sockets live here, so stop() can end them at once.
 */
export class WebhookDispatcher {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly requests = new Set<http.ClientRequest>();
  private stopped = false;

  constructor(
    private readonly store: StateStore,
    private readonly target: { url: string; secret: string },
    private readonly log: LogSink,
  ) {}

  private get state(): State {
    return this.store.state;
  }

  record(
    type: string,
    object: Record<string, unknown>,
    extra: { account?: string; previousAttributes?: Record<string, unknown> } = {},
  ): StripeEvent {
    const event: StripeEvent = {
      id: newId('evt'),
      object: 'event',
      ...(extra.account === undefined ? {} : { account: extra.account }),
      api_version: EVENT_API_VERSION,
      created: unixSeconds(),
      // A snapshot: later changes to the object must not rewrite what this event said.
      data: {
        object: structuredClone(object),
        ...(extra.previousAttributes === undefined ? {} : { previous_attributes: extra.previousAttributes }),
      },
      livemode: false,
      pending_webhooks: 1,
      request: { id: null, idempotency_key: null },
      type,
    };
    this.state.events[event.id] = event;
    return event;
  }

  /** First attempt now and awaited; retries in the background. The delivery is on disk before the attempt, so a crash during it resumes it. */
  async deliver(eventId: string): Promise<DeliveryResult> {
    this.state.deliveries[eventId] = { attempts: 0, nextAttemptAtMs: Date.now() };
    await this.store.commit();
    return this.attempt(eventId);
  }

  /** For events an API call causes: Stripe answers the call without waiting for the receiver. The caller commits. */
  deliverSoon(eventId: string): void {
    this.state.deliveries[eventId] = { attempts: 0, nextAttemptAtMs: Date.now() };
    this.schedule(eventId, 0);
  }

  resumePending(): void {
    const now = Date.now();
    for (const [eventId, delivery] of Object.entries(this.state.deliveries)) {
      this.schedule(eventId, Math.max(0, delivery.nextAttemptAtMs - now));
    }
  }

  stop(): void {
    this.stopped = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    for (const request of this.requests) request.destroy();
    this.requests.clear();
  }

  private schedule(eventId: string, delayMs: number): void {
    if (this.stopped) return;
    clearTimeout(this.timers.get(eventId));
    const timer = setTimeout(() => {
      this.timers.delete(eventId);
      this.attempt(eventId).catch((error: unknown) =>
        this.log({ level: 'error', msg: 'webhook_attempt_failed', eventId, error: String(error) }),
      );
    }, delayMs);
    this.timers.set(eventId, timer);
  }

  private async attempt(eventId: string): Promise<DeliveryResult> {
    clearTimeout(this.timers.get(eventId));
    this.timers.delete(eventId);
    const event = this.state.events[eventId];
    if (event === undefined) {
      delete this.state.deliveries[eventId];
      return { eventId, delivered: false };
    }
    const attempt = (this.state.deliveries[eventId]?.attempts ?? 0) + 1;
    const outcome = await this.post(event);
    const result: DeliveryResult = {
      eventId,
      delivered: outcome.delivered,
      ...(outcome.status === undefined ? {} : { status: outcome.status }),
    };
    this.log({
      level: outcome.delivered ? 'info' : 'warn',
      msg: 'webhook_attempt',
      eventId,
      type: event.type,
      attempt,
      ...outcome,
    });
    if (this.stopped) return result;
    if (outcome.delivered) {
      delete this.state.deliveries[eventId];
    } else if (attempt >= MAX_DELIVERY_ATTEMPTS) {
      delete this.state.deliveries[eventId];
      this.log({ level: 'error', msg: 'webhook_delivery_abandoned', eventId, type: event.type, attempts: attempt });
    } else {
      const delayMs = retryDelayMs(attempt);
      this.state.deliveries[eventId] = { attempts: attempt, nextAttemptAtMs: Date.now() + delayMs };
      this.schedule(eventId, delayMs);
    }
    await this.store.commit();
    return result;
  }

  private post(event: StripeEvent): Promise<AttemptOutcome> {
    // Stripe sends pretty-printed JSON; the signature covers these exact bytes, signed afresh per attempt.
    const payload = JSON.stringify(event, null, 2);
    const url = new URL(this.target.url);
    const client = url.protocol === 'https:' ? https : http;
    return new Promise((resolve) => {
      let settled = false;
      const settle = (outcome: AttemptOutcome): void => {
        if (settled) return;
        settled = true;
        resolve(outcome);
      };
      const request = client.request(
        url,
        {
          method: 'POST',
          agent: false,
          timeout: DELIVERY_TIMEOUT_MS,
          headers: {
            'content-type': 'application/json; charset=utf-8',
            'content-length': Buffer.byteLength(payload),
            'user-agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)',
            'stripe-signature': signatureHeader(payload, this.target.secret, unixSeconds()),
          },
        },
        (response) => {
          response.resume();
          const status = response.statusCode ?? 0;
          settle({ delivered: status >= 200 && status < 300, status });
        },
      );
      this.requests.add(request);
      request.on('timeout', () => request.destroy(new Error(`no answer within ${DELIVERY_TIMEOUT_MS} ms`)));
      request.on('error', (error) => settle({ delivered: false, error: error.message }));
      request.on('close', () => {
        this.requests.delete(request);
        settle({ delivered: false, error: 'connection closed' });
      });
      request.end(payload);
    });
  }
}

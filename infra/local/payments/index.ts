import { createHash } from 'node:crypto';
import http from 'node:http';
import * as z from 'zod';
import { decodeForm, FormDecodeError, paramsDigest, type FormObject } from './form';
import {
  approveAtRedirect,
  approveAtRedirectLate,
  cancelAtRedirect,
  cancelPayment,
  closeDispute,
  completeOnboarding,
  disputePayment,
  failPayment,
  refundPayment,
  StandInError,
  succeedPayment,
  type OperationsContext,
} from './operations';
import { matchStripeRoute, StripeApiError, type ApiContext, type ApiResult, type StripeErrorBody } from './stripe-api';
import { ownEntry, newId, StateStore, type State, type Transfer } from './state';
import {
  REDIRECT_ACTION_PATH,
  REDIRECT_PAGE_PATH,
  type RedirectAction,
  redirectPage,
  returnLocation,
} from './redirect';
import { EVENT_API_VERSION, WebhookDispatcher, type DeliveryResult, type LogSink } from './webhooks';

export type { DeliveryResult } from './webhooks';
export { StandInError } from './operations';

/*
 * A local impersonation of the few Stripe endpoints the app calls, so the real `stripe` SDK runs
 * against it unchanged (`new Stripe(key, { host, port, protocol: 'http' })`), plus control routes
 * that play the customer's and the creator's side, as `stripe trigger` does.
 */

export interface PaymentsStandInOptions {
  /** 0 = any free port. */
  port: number;
  /** State is persisted here as JSON after every mutation and loaded at start. */
  dataDir: string;
  /** Where signed events are POSTed, e.g. http://127.0.0.1:3000/v1/webhooks/stripe. */
  webhookUrl: string;
  /** `whsec_...` */
  webhookSecret: string;
  /** Structured log sink; secrets are never passed to it. */
  log?: (line: Record<string, unknown>) => void;
}

export type FaultKind = 'http500' | 'http429' | 'timeout' | 'rejectDestination';

export interface FaultSpec {
  /** A path prefix such as '/v1/transfers'. */
  path: string;
  method?: string;
  kind: FaultKind;
  times: number;
}

export type StandInTransfer = Transfer;

export interface PaymentsStandIn {
  url: string;
  port: number;
  stop(): Promise<void>;
  succeedPayment(paymentIntentId: string): Promise<DeliveryResult>;
  failPayment(paymentIntentId: string): Promise<DeliveryResult>;
  /** Partial when an amount is given; otherwise the whole charge. */
  disputePayment(paymentIntentId: string, amountMinor?: number): Promise<DeliveryResult>;
  /** The card network's decision on the payment's dispute. */
  closeDispute(paymentIntentId: string, outcome: 'won' | 'lost'): Promise<DeliveryResult>;
  /** The customer abandons a payment that was never paid. */
  cancelPayment(paymentIntentId: string): Promise<DeliveryResult>;
  /** Partial when an amount is given; otherwise whatever is left to refund. */
  refundPayment(paymentIntentId: string, amountMinor?: number): Promise<DeliveryResult>;
  completeOnboarding(accountId: string): Promise<DeliveryResult>;
  injectFault(fault: FaultSpec): void;
  clearFaults(): void;
  transfers(): StandInTransfer[];
  requestCountByIdempotencyKey(key: string): number;
}

/** Stripe refuses larger request bodies; nothing the app sends comes close. */
const MAX_BODY_BYTES = 1024 * 1024;
/** Stripe's limit on an Idempotency-Key. */
const MAX_IDEMPOTENCY_KEY_LENGTH = 255;
/** Stripe remembers idempotency keys for 24 hours. */
const IDEMPOTENCY_KEY_TTL_MS = 24 * 60 * 60 * 1000;
const IDEMPOTENCY_SWEEP_INTERVAL_MS = 60 * 60 * 1000;
/** Longer than any client timeout the app sets, so a `timeout` fault is seen as one. */
const TIMEOUT_FAULT_HANG_MS = 35_000;
/** A 429 tells the client to come back after this long. */
const RATE_LIMIT_RETRY_AFTER_SECONDS = 1;

const faultSchema = z.strictObject({
  path: z.string().startsWith('/'),
  method: z.string().optional(),
  kind: z.enum(['http500', 'http429', 'timeout', 'rejectDestination']),
  times: z.number().int().positive(),
});

/** A refund or a dispute may name a partial amount. */
const amountBodySchema = z.strictObject({ amount: z.number().int().positive().optional() });

const CONTROL_PAYMENT_PATH =
  /^\/_standin\/payments\/([^/]+)\/(succeed|fail|cancel|dispute|refund|win-dispute|lose-dispute|redirect-approve|redirect-approve-late|redirect-cancel)$/;
const CONTROL_ONBOARDING_PATH = /^\/_standin\/accounts\/([^/]+)\/complete-onboarding$/;
const ONBOARDING_PAGE_PATH = /^\/connect\/onboarding\/([^/]+)$/;

class BodyTooLargeError extends Error {}

function readBody(request: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new BodyTooLargeError());
        request.destroy();
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

/** Percent-decodes a path segment; malformed encoding names no object, so it yields an id nothing matches. */
function pathSegment(segment: string | undefined): string {
  try {
    return decodeURIComponent(segment ?? '');
  } catch {
    return '';
  }
}

function headerValue(request: http.IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The secret key from `Bearer sk_...` or, as curl -u sends it, Basic auth with the key as user name. */
function apiKeyOf(request: http.IncomingMessage): string | null {
  const authorization = headerValue(request, 'authorization') ?? '';
  const [scheme = '', credentials = ''] = authorization.split(' ', 2);
  let key = credentials;
  if (scheme.toLowerCase() === 'basic') key = Buffer.from(credentials, 'base64').toString('utf8').split(':')[0] ?? '';
  else if (scheme.toLowerCase() !== 'bearer') return null;
  return /^(sk|rk)_\S+$/.test(key) ? key : null;
}

/** Idempotency keys are scoped per API key; the key itself is never stored or logged. */
function apiKeyFingerprint(apiKey: string): string {
  return createHash('sha256').update(apiKey).digest('hex').slice(0, 16);
}

function stripeError(type: StripeErrorBody['error']['type'], message: string, code?: string): StripeErrorBody {
  return { error: { type, ...(code === undefined ? {} : { code }), message } };
}

/**
 * Runs tasks with the same key one after another. The check-and-execute is synchronous anyway; the
 * lock makes a concurrent duplicate wait for the first request's write too, so it never replays an
 * answer that a crash could still undo.
 */
class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release = (): void => undefined;
    const current = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => current);
    this.tails.set(key, tail);
    await previous;
    try {
      return await task();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}

function pruneIdempotency(state: State, nowMs: number): boolean {
  let pruned = false;
  for (const [scopedKey, record] of Object.entries(state.idempotency)) {
    if (nowMs - record.createdAtMs >= IDEMPOTENCY_KEY_TTL_MS) {
      delete state.idempotency[scopedKey];
      pruned = true;
    }
  }
  return pruned;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);
}

function onboardingPage(accountId: string, returnUrl: string | undefined): string {
  // Only http(s) links: a return_url is caller input and must not become a javascript: link.
  const link =
    returnUrl !== undefined && /^https?:\/\//i.test(returnUrl)
      ? `<p><a href="${escapeHtml(returnUrl)}">Return to the app</a></p>`
      : '<p>You can close this page.</p>';
  return `<!doctype html><html><head><meta charset="utf-8"><title>Onboarding complete</title></head><body><h1>Onboarding complete</h1><p>Payouts are enabled for ${escapeHtml(accountId)}.</p>${link}</body></html>`;
}

export async function startPaymentsStandIn(options: PaymentsStandInOptions): Promise<PaymentsStandIn> {
  const log: LogSink = options.log ?? (() => undefined);
  const store = await StateStore.open(options.dataDir);
  const { state } = store;
  if (pruneIdempotency(state, Date.now())) await store.commit();
  const dispatcher = new WebhookDispatcher(store, { url: options.webhookUrl, secret: options.webhookSecret }, log);
  const operations: OperationsContext = { state, dispatcher };
  const faults: FaultSpec[] = [];
  const requestCounts = new Map<string, { count: number; lastSeenMs: number }>();
  const keyLocks = new KeyedMutex();
  const hangingTimers = new Set<NodeJS.Timeout>();
  let baseUrl = '';

  function send(response: http.ServerResponse, status: number, body: string, headers: http.OutgoingHttpHeaders): void {
    response.writeHead(status, { 'content-length': Buffer.byteLength(body), ...headers });
    response.end(body);
  }

  function sendJson(
    response: http.ServerResponse,
    status: number,
    body: unknown,
    headers: http.OutgoingHttpHeaders = {},
  ): void {
    send(response, status, JSON.stringify(body, null, 2), { 'content-type': 'application/json', ...headers });
  }

  function takeFault(method: string, path: string): FaultSpec | null {
    const index = faults.findIndex(
      (fault) => path.startsWith(fault.path) && (fault.method === undefined || fault.method.toUpperCase() === method),
    );
    const fault = faults[index];
    if (fault === undefined) return null;
    fault.times -= 1;
    if (fault.times <= 0) faults.splice(index, 1);
    return fault;
  }

  /** Faults answer before the idempotency layer: Stripe stores no result for a 5xx or 429 it never executed. */
  function answerFault(
    fault: FaultSpec,
    response: http.ServerResponse,
    headers: http.OutgoingHttpHeaders,
  ): number | null {
    switch (fault.kind) {
      case 'http500':
        sendJson(response, 500, stripeError('api_error', 'An unknown error occurred (injected fault).'), headers);
        return 500;
      case 'http429':
        sendJson(
          response,
          429,
          stripeError('rate_limit_error', 'Too many requests hit the API too quickly (injected fault).', 'rate_limit'),
          { ...headers, 'retry-after': String(RATE_LIMIT_RETRY_AFTER_SECONDS) },
        );
        return 429;
      case 'rejectDestination':
        sendJson(
          response,
          400,
          {
            error: {
              type: 'invalid_request_error',
              code: 'account_invalid',
              param: 'destination',
              message: 'The destination account is invalid (injected fault).',
            },
          },
          headers,
        );
        return 400;
      case 'timeout': {
        const timer = setTimeout(() => {
          hangingTimers.delete(timer);
          response.socket?.destroy();
        }, TIMEOUT_FAULT_HANG_MS);
        hangingTimers.add(timer);
        return null;
      }
    }
  }

  function countKey(key: string): void {
    const entry = requestCounts.get(key) ?? { count: 0, lastSeenMs: 0 };
    entry.count += 1;
    entry.lastSeenMs = Date.now();
    requestCounts.set(key, entry);
  }

  function execute(run: (context: ApiContext) => ApiResult): ApiResult & { storable: boolean } {
    try {
      return { ...run({ state, dispatcher, baseUrl }), storable: true };
    } catch (error) {
      if (error instanceof StripeApiError)
        return { status: error.status, body: error.body(), storable: error.storable };
      throw error;
    }
  }

  async function handleStripe(
    request: http.IncomingMessage,
    response: http.ServerResponse,
    method: string,
    url: URL,
  ): Promise<void> {
    const startedMs = Date.now();
    const path = url.pathname;
    const idempotencyKey = method === 'POST' ? headerValue(request, 'idempotency-key') : undefined;
    if (idempotencyKey !== undefined) countKey(idempotencyKey);
    const headers: http.OutgoingHttpHeaders = {
      'request-id': newId('req'),
      'stripe-version': headerValue(request, 'stripe-version') ?? EVENT_API_VERSION,
      ...(idempotencyKey === undefined ? {} : { 'idempotency-key': idempotencyKey }),
    };
    const finish = (status: number | null, extra: Record<string, unknown> = {}): void =>
      log({
        level: 'info',
        msg: 'stripe_request',
        method,
        path,
        status,
        durationMs: Date.now() - startedMs,
        idempotencyKey,
        ...extra,
      });

    const apiKey = apiKeyOf(request);
    if (apiKey === null) {
      sendJson(
        response,
        401,
        stripeError(
          'invalid_request_error',
          "You did not provide a valid API key. Use 'Authorization: Bearer sk_...'.",
        ),
        headers,
      );
      return finish(401);
    }
    const body = await readBody(request);
    const fault = takeFault(method, path);
    if (fault !== null) return finish(answerFault(fault, response, headers), { fault: fault.kind });

    const route = matchStripeRoute(method, path);
    if (route === null) {
      sendJson(
        response,
        404,
        stripeError('invalid_request_error', `Unrecognized request URL (${method}: ${path}).`),
        headers,
      );
      return finish(404);
    }
    let params: FormObject;
    try {
      params = decodeForm(method === 'POST' ? body : url.search.slice(1));
    } catch (error) {
      if (!(error instanceof FormDecodeError)) throw error;
      sendJson(response, 400, stripeError('invalid_request_error', error.message), headers);
      return finish(400);
    }

    if (idempotencyKey === undefined) {
      const result = execute((context) => route.run(context, params));
      if (method === 'POST') await store.commit();
      sendJson(response, result.status, result.body, headers);
      return finish(result.status);
    }
    if (idempotencyKey.length > MAX_IDEMPOTENCY_KEY_LENGTH) {
      const message = `Idempotency-Key must be at most ${MAX_IDEMPOTENCY_KEY_LENGTH} characters`;
      sendJson(response, 400, stripeError('invalid_request_error', message), headers);
      return finish(400);
    }

    const scopedKey = `${apiKeyFingerprint(apiKey)}:${idempotencyKey}`;
    const digest = paramsDigest(params);
    const outcome = await keyLocks.run(scopedKey, async () => {
      const stored = state.idempotency[scopedKey];
      if (stored !== undefined && Date.now() - stored.createdAtMs < IDEMPOTENCY_KEY_TTL_MS) {
        if (stored.method !== method || stored.path !== path) {
          const message = `Keys for idempotent requests can only be used for the same endpoint they were first used for ('${stored.method} ${stored.path}' vs '${method} ${path}'). Try using a key other than '${idempotencyKey}' if you meant to execute a different request.`;
          return {
            status: 400,
            body: JSON.stringify(stripeError('idempotency_error', message), null, 2),
            replayed: false,
          };
        }
        if (stored.paramsDigest !== digest) {
          const message = `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${idempotencyKey}' if you meant to execute a different request.`;
          return {
            status: 400,
            body: JSON.stringify(stripeError('idempotency_error', message), null, 2),
            replayed: false,
          };
        }
        return { status: stored.status, body: stored.body, replayed: true };
      }
      const result = execute((context) => route.run(context, params));
      const serialized = JSON.stringify(result.body, null, 2);
      if (result.storable) {
        state.idempotency[scopedKey] = {
          method,
          path,
          paramsDigest: digest,
          status: result.status,
          body: serialized,
          createdAtMs: Date.now(),
        };
      }
      await store.commit();
      return { status: result.status, body: serialized, replayed: false };
    });
    send(response, outcome.status, outcome.body, {
      'content-type': 'application/json',
      ...headers,
      ...(outcome.replayed ? { 'idempotent-replayed': 'true' } : {}),
    });
    return finish(outcome.status, outcome.replayed ? { replayed: true } : {});
  }

  async function answerControl(response: http.ServerResponse, operation: () => Promise<DeliveryResult>): Promise<void> {
    try {
      const result = await operation();
      sendJson(response, 200, { eventId: result.eventId, delivered: result.delivered, status: result.status ?? null });
    } catch (error) {
      if (!(error instanceof StandInError)) throw error;
      sendJson(response, error.statusCode, stripeError('invalid_request_error', error.message));
    }
  }

  async function handleControl(
    request: http.IncomingMessage,
    response: http.ServerResponse,
    method: string,
    path: string,
  ): Promise<void> {
    const body = await readBody(request);
    const paymentMatch = CONTROL_PAYMENT_PATH.exec(path);
    const onboardingMatch = CONTROL_ONBOARDING_PATH.exec(path);
    if (method !== 'POST' || (paymentMatch === null && onboardingMatch === null)) {
      sendJson(response, 404, stripeError('invalid_request_error', `Unrecognized request URL (${method}: ${path}).`));
      return;
    }
    if (onboardingMatch !== null) {
      const accountId = pathSegment(onboardingMatch[1]);
      return answerControl(response, () => completeOnboarding(operations, accountId));
    }
    const paymentIntentId = pathSegment(paymentMatch?.[1]);
    const action = paymentMatch?.[2];
    let amount: number | undefined;
    try {
      amount = amountBodySchema.parse(body.trim() === '' ? {} : JSON.parse(body)).amount;
    } catch {
      sendJson(
        response,
        400,
        stripeError('invalid_request_error', 'The body must be empty or JSON { "amount": <positive integer> }'),
      );
      return;
    }
    const byAction: Record<string, () => Promise<DeliveryResult>> = {
      succeed: () => succeedPayment(operations, paymentIntentId),
      fail: () => failPayment(operations, paymentIntentId),
      cancel: () => cancelPayment(operations, paymentIntentId),
      dispute: () => disputePayment(operations, paymentIntentId, amount),
      refund: () => refundPayment(operations, paymentIntentId, amount),
      'win-dispute': () => closeDispute(operations, paymentIntentId, 'won'),
      'lose-dispute': () => closeDispute(operations, paymentIntentId, 'lost'),
      'redirect-approve': () => approveAtRedirect(operations, paymentIntentId),
      'redirect-approve-late': () => approveAtRedirectLate(operations, paymentIntentId),
      'redirect-cancel': () => cancelAtRedirect(operations, paymentIntentId),
    };
    const operation = action === undefined ? undefined : byAction[action];
    if (operation === undefined) {
      sendJson(response, 404, stripeError('invalid_request_error', `Unrecognized request URL (${method}: ${path}).`));
      return;
    }
    return answerControl(response, operation);
  }

  async function handleOnboardingPage(response: http.ServerResponse, accountId: string): Promise<void> {
    try {
      await completeOnboarding(operations, accountId);
    } catch (error) {
      if (!(error instanceof StandInError)) throw error;
      send(response, error.statusCode, `<!doctype html><p>${escapeHtml(error.message)}</p>`, {
        'content-type': 'text/html; charset=utf-8',
      });
      return;
    }
    send(response, 200, onboardingPage(accountId, state.onboardingReturnUrls[accountId]), {
      'content-type': 'text/html; charset=utf-8',
    });
  }

  /** The customer's side of a redirect method: its page, and what each of its buttons does. */
  async function handleRedirect(response: http.ServerResponse, method: string, path: string): Promise<void> {
    const page = REDIRECT_PAGE_PATH.exec(path);
    const action = REDIRECT_ACTION_PATH.exec(path);
    const paymentIntentId = pathSegment((page ?? action)?.[2]);
    const paymentIntent = ownEntry(state.paymentIntents, paymentIntentId);
    const returnUrl = paymentIntent?.next_action?.redirect_to_url.return_url;
    if (paymentIntent === undefined || returnUrl === undefined) {
      send(response, 404, '<!doctype html><p>This payment is not waiting for you here.</p>', {
        'content-type': 'text/html; charset=utf-8',
      });
      return;
    }
    if (page !== null && method === 'GET') {
      send(response, 200, redirectPage(page[1] ?? 'paypal', paymentIntent), {
        'content-type': 'text/html; charset=utf-8',
      });
      return;
    }
    const chosen = (action?.[3] ?? '') as RedirectAction;
    const byChoice: Record<RedirectAction, () => Promise<DeliveryResult>> = {
      approve: () => approveAtRedirect(operations, paymentIntentId),
      'approve-late': () => approveAtRedirectLate(operations, paymentIntentId),
      cancel: () => cancelAtRedirect(operations, paymentIntentId),
    };
    if (method !== 'POST' || byChoice[chosen] === undefined) {
      send(response, 405, '', { allow: 'POST' });
      return;
    }
    await byChoice[chosen]();
    send(response, 303, '', { location: returnLocation(returnUrl, paymentIntent, chosen) });
  }

  async function handle(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const method = (request.method ?? 'GET').toUpperCase();
    const url = new URL(request.url ?? '/', baseUrl);
    const path = url.pathname;
    if (path.startsWith('/v1/')) return handleStripe(request, response, method, url);
    if (path.startsWith('/_standin/')) return handleControl(request, response, method, path);
    if (path.startsWith('/redirect/')) return handleRedirect(response, method, path);
    const onboarding = ONBOARDING_PAGE_PATH.exec(path);
    if (method === 'GET' && onboarding !== null) return handleOnboardingPage(response, pathSegment(onboarding[1]));
    sendJson(response, 404, stripeError('invalid_request_error', `Unrecognized request URL (${method}: ${path}).`));
  }

  const server = http.createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      if (error instanceof BodyTooLargeError) {
        if (!response.headersSent)
          sendJson(response, 413, stripeError('invalid_request_error', 'The request body is too large.'));
        return;
      }
      log({ level: 'error', msg: 'standin_request_failed', path: request.url, error: String(error) });
      if (!response.headersSent) sendJson(response, 500, stripeError('api_error', 'An unknown error occurred'));
      else response.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string')
    throw new Error('could not read the port the stand-in listens on');
  const { port } = address;
  baseUrl = `http://127.0.0.1:${port}`;
  dispatcher.resumePending();

  const sweepTimer = setInterval(() => {
    const nowMs = Date.now();
    for (const [key, entry] of requestCounts)
      if (nowMs - entry.lastSeenMs >= IDEMPOTENCY_KEY_TTL_MS) requestCounts.delete(key);
    if (pruneIdempotency(state, nowMs)) {
      store
        .commit()
        .catch((error: unknown) => log({ level: 'error', msg: 'standin_persist_failed', error: String(error) }));
    }
  }, IDEMPOTENCY_SWEEP_INTERVAL_MS);
  sweepTimer.unref();
  log({
    level: 'info',
    msg: 'payments_standin_started',
    url: baseUrl,
    dataDir: options.dataDir,
    webhookUrl: options.webhookUrl,
  });

  let stopping: Promise<void> | null = null;
  return {
    url: baseUrl,
    port,
    stop() {
      stopping ??= (async () => {
        clearInterval(sweepTimer);
        for (const timer of hangingTimers) clearTimeout(timer);
        hangingTimers.clear();
        dispatcher.stop();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        // Hanging (timeout-fault) and keep-alive connections would hold close() open: end them now.
        server.closeAllConnections();
        await closed;
        await store.close();
      })();
      return stopping;
    },
    succeedPayment: (id) => succeedPayment(operations, id),
    failPayment: (id) => failPayment(operations, id),
    disputePayment: (id, amountMinor) => disputePayment(operations, id, amountMinor),
    closeDispute: (id, outcome) => closeDispute(operations, id, outcome),
    cancelPayment: (id) => cancelPayment(operations, id),
    refundPayment: (id, amountMinor) => refundPayment(operations, id, amountMinor),
    completeOnboarding: (id) => completeOnboarding(operations, id),
    injectFault(fault) {
      faults.push(faultSchema.parse(fault));
    },
    clearFaults() {
      faults.length = 0;
    },
    transfers: () => Object.values(state.transfers).map((transfer) => structuredClone(transfer)),
    requestCountByIdempotencyKey: (key) => requestCounts.get(key)?.count ?? 0,
  };
}

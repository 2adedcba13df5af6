/**
 * The live-room demo page (browser code, bundled by build.ts with esbuild). It talks only to the
 * public API and WebSocket of API.md, plus the local-only /dev routes for sign-in and for
 * completing a payment through the payments stand-in. Every answer is parsed (zod/mini keeps the
 * bundle small); every error code is shown in plain words.
 */
import * as z from 'zod/mini';
import { ageOfMajority, ageOn, isCalendarDate, MINIMUM_AGE } from '../../../shared/domain/identity';
import {
  type Consent,
  enterFamily,
  leaveFamily,
  loadConsent,
  renderConsent,
  watchConsent,
  wireConsent,
} from './guardian';
import { amountOf, byId, type CallOptions, count, element, giftImage, type PageKit } from './kit';
import { subscribeToRoom, type RoomSubscription } from './room-channel';
import { mountDesk } from './desk';

// ---------------------------------------------------------------------------------------------
// Limits and timings. Each is a bound on work the page may cause.
// ---------------------------------------------------------------------------------------------

/** sessionStorage: one signed-in person per tab, so a second tab can be the other person. */
const SESSION_KEY = 'live-gifting.session';
const HISTORY_PAGE_SIZE = 20;
const FEED_MAX_ITEMS = 50;
const LEADERBOARD_SIZE = 10;
/** API.md's example page size for catch-up. */
const CATCH_UP_PAGE_SIZE = 100;
/** A catch-up reads at most this many pages before letting live events through again. */
const MAX_CATCH_UP_PAGES = 20;
/** A gap the events route cannot fill is retried this often before the page skips over it. */
const GAP_FETCH_ATTEMPTS = 3;
const GAP_RETRY_DELAY_MS = 700;
const RECONNECT_BASE_DELAY_MS = 500;
const RECONNECT_MAX_DELAY_MS = 10_000;
const MAX_RECONNECT_ATTEMPTS = 30;
/** API Gateway closes a WebSocket idle for 10 minutes; a ping well inside that keeps it. */
const PING_INTERVAL_MS = 4 * 60_000;
/** A gift not acknowledged before a drop is sent again (same requestId: the server dedupes) if this young. */
const PENDING_GIFT_RESEND_WINDOW_MS = 60_000;
const RECHARGE_POLL_INTERVAL_MS = 400;
const RECHARGE_POLL_DEADLINE_MS = 30_000;
const ONBOARDING_POLL_INTERVAL_MS = 1_000;
const ONBOARDING_POLL_DEADLINE_MS = 5 * 60_000;
const PAYOUT_POLL_INTERVAL_MS = 1_000;
/** API.md: locally a payout is paid within 10 s (60 s after a crash); polling stops well after. */
const PAYOUT_POLL_DEADLINE_MS = 2 * 60_000;
const STREAMS_REFRESH_INTERVAL_MS = 5_000;
/** API.md: RATE_LIMITED says when to come back; the page retries that many times at most. */
const MAX_RATE_LIMIT_RETRIES = 3;
const MAX_RETRY_AFTER_MS = 10_000;
/**
 * The room's counters come as `room` messages (API.md), so the page never polls the stream per
 * gift. The leaderboard has no message: while gifts arrive it is read at most this often.
 */
const LEADERBOARD_REFRESH_MS = 5_000;
/** And once more this long after the last gift: the server folds the last gifts within 5 s. */
const LEADERBOARD_TRAILING_MS = 8_000;
const WALLET_REFRESH_DEBOUNCE_MS = 600;
const MAX_CONCURRENT_ANIMATIONS = 24;
const ANIMATION_DURATION_MS = 2_600;
const NOTICE_DURATION_MS = 6_000;
/** API.md defaults, shown as hints only: the server decides. */
const MIN_PAYOUT_DIAMONDS_HINT = 2_000;
const CENTS_PER_DIAMOND_DENOMINATOR = 2;
const MAX_NAME_LENGTH = 40;

// ---------------------------------------------------------------------------------------------
// What the API answers (API.md), parsed rather than trusted.
// ---------------------------------------------------------------------------------------------

const money = z.object({ amount: z.int(), currency: z.string() });
type Money = z.infer<typeof money>;

const walletSchema = z.object({
  userId: z.string(),
  coins: z.int(),
  owedCoins: z.int(),
  diamonds: z.int(),
  pendingDiamonds: z.int(),
  locked: z.boolean(),
  budget: z.object({ monthlyLimit: z.nullable(money), spentThisMonth: money }),
});
type Wallet = z.infer<typeof walletSchema>;

const transactionsSchema = z.object({
  items: z.array(
    z.object({
      id: z.string(),
      type: z.string(),
      coins: z.optional(z.int()),
      diamonds: z.optional(z.int()),
      pendingDiamonds: z.optional(z.int()),
      createdAt: z.string(),
    }),
  ),
  nextCursor: z.optional(z.nullable(z.string())),
});
type Transaction = z.infer<typeof transactionsSchema>['items'][number];

const packagesSchema = z.object({
  country: z.string(),
  currency: z.string(),
  packages: z.array(
    z.object({
      id: z.string(),
      coins: z.int(),
      price: money,
      offer: z.optional(
        z.object({
          offerId: z.string(),
          kind: z.string(),
          price: money,
          bonusCoins: z.int(),
          endsAt: z.string(),
          firstRechargeOnly: z.boolean(),
        }),
      ),
    }),
  ),
  platformFee: z.optional(money),
  methods: z.array(z.object({ method: z.string(), confirmation: z.string(), fee: money })),
});
type CoinPackage = z.infer<typeof packagesSchema>['packages'][number];

const giftsSchema = z.object({ gifts: z.array(z.object({ id: z.string(), name: z.string(), coins: z.int() })) });
type Gift = z.infer<typeof giftsSchema>['gifts'][number];

const tokenSchema = z.object({ token: z.string() });
const rechargeCreatedSchema = z.object({
  rechargeId: z.string(),
  status: z.string(),
  coins: z.int(),
  price: money,
  payment: z.object({ paymentIntentId: z.string(), redirectUrl: z.optional(z.string()) }),
  bonusCoins: z.optional(z.int()),
});
const rechargeSchema = z.object({ rechargeId: z.string(), status: z.string(), coins: z.int() });

/** API.md, "Creator profiles": what a viewer checks before sending a gift. */
const profileSchema = z.object({
  creatorId: z.string(),
  displayName: z.string(),
  streamingSince: z.string(),
  streams: z.int(),
  verified: z.boolean(),
  giftCoinsReceived: z.int(),
});
type Profile = z.infer<typeof profileSchema>;
const streamSchema = z.object({
  streamId: z.string(),
  creatorId: z.string(),
  title: z.string(),
  status: z.string(),
  startedAt: z.optional(z.string()),
  giftCoins: z.optional(z.int()),
  viewers: z.optional(z.int()),
  creator: z.optional(z.nullable(profileSchema)),
});
type Stream = z.infer<typeof streamSchema>;
const streamsSchema = z.object({ items: z.array(streamSchema), nextCursor: z.optional(z.nullable(z.string())) });
const leaderboardSchema = z.object({ items: z.array(z.object({ userId: z.string(), coins: z.int() })) });

const giftEventFields = {
  seq: z.int(),
  giftTxId: z.string(),
  fromUserId: z.string(),
  giftId: z.string(),
  quantity: z.int(),
  coins: z.int(),
  at: z.string(),
};
const giftEventSchema = z.object({ type: z.literal('gift'), streamId: z.string(), ...giftEventFields });
type GiftEvent = z.infer<typeof giftEventSchema>;
/** Catch-up items are the same gift events; type and streamId are filled in when absent. */
const eventsSchema = z.object({
  items: z.array(
    z.object({ type: z.optional(z.literal('gift')), streamId: z.optional(z.string()), ...giftEventFields }),
  ),
  nextSeq: z.optional(z.nullable(z.int())),
});

const payoutAccountSchema = z.object({
  accountId: z.string(),
  onboardingUrl: z.optional(z.string()),
  payoutsEnabled: z.boolean(),
});
const payoutSchema = z.object({
  payoutId: z.string(),
  status: z.string(),
  diamonds: z.int(),
  amount: z.optional(money),
  createdAt: z.optional(z.string()),
});
type Payout = z.infer<typeof payoutSchema>;
const payoutsSchema = z.object({ items: z.array(payoutSchema), nextCursor: z.optional(z.nullable(z.string())) });

const errorBodySchema = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    details: z.optional(z.array(z.object({ path: z.string(), message: z.string() }))),
    correlationId: z.optional(z.string()),
  }),
});

const wsErrorSchema = z.object({
  type: z.literal('error'),
  requestId: z.optional(z.nullable(z.string())),
  error: z.object({ code: z.string(), message: z.string() }),
});
const serverMessageSchema = z.discriminatedUnion('type', [
  giftEventSchema,
  z.object({
    type: z.literal('giftAck'),
    requestId: z.string(),
    giftTxId: z.string(),
    wallet: z.object({ coins: z.int() }),
  }),
  wsErrorSchema,
  z.object({ type: z.literal('wallet'), coins: z.int(), diamonds: z.int(), pendingDiamonds: z.int() }),
  z.object({ type: z.literal('streamEnded'), streamId: z.string() }),
  z.object({ type: z.literal('pong') }),
  z.object({ type: z.literal('room'), streamId: z.string(), viewers: z.int(), giftCoins: z.int() }),
  z.object({
    type: z.literal('giftSummary'),
    streamId: z.string(),
    fromSeq: z.int(),
    toSeq: z.int(),
    gifts: z.array(z.object({ giftId: z.string(), quantity: z.int(), coins: z.int() })),
    senders: z.int(),
  }),
]);
type ServerMessage = z.infer<typeof serverMessageSchema>;
const batchSchema = z.object({ type: z.literal('batch'), events: z.array(z.unknown()) });

const sessionSchema = z.object({
  token: z.string(),
  userId: z.string(),
  role: z.enum(['viewer', 'creator']),
  country: z.string(),
});
type Session = z.infer<typeof sessionSchema>;

// ---------------------------------------------------------------------------------------------
// Errors in words a person understands.
// ---------------------------------------------------------------------------------------------

const PLAIN_WORDS: Readonly<Record<string, string>> = {
  VALIDATION_FAILED: 'Something in the form is not right.',
  PAYLOAD_TOO_LARGE: 'That is too much to send at once.',
  IDEMPOTENCY_KEY_REQUIRED: 'The page could not send that safely. Please try again.',
  UNAUTHORIZED: 'Your session has expired. Please sign in again.',
  FORBIDDEN: 'You are not allowed to do that.',
  AGE_RESTRICTED: "You're too young for this",
  BUDGET_SET_BY_GUARDIAN: 'Your guardian set this budget: you can lower it, but not raise or remove it.',
  CONFLICT: 'That was already decided.',
  REGION_UNAVAILABLE: 'Coins are not sold in your country yet.',
  NOT_FOUND: 'We could not find that.',
  INSUFFICIENT_COINS: 'Not enough coins — buy more',
  INSUFFICIENT_DIAMONDS: 'You do not have that many diamonds available.',
  BUDGET_EXCEEDED: "You've reached your monthly budget",
  STREAM_NOT_LIVE: 'This stream is not live any more.',
  SELF_GIFT: 'You cannot send gifts to your own stream.',
  PAYOUT_ACCOUNT_MISSING: 'Link a payout account first.',
  PAYOUT_LIMIT_EXCEEDED: 'That is over the daily payout limit. Try a smaller amount, or tomorrow.',
  IDEMPOTENCY_KEY_REUSED: 'That request was already used for something else. Please try again.',
  BELOW_MINIMUM_PAYOUT: `Payouts start at ${MIN_PAYOUT_DIAMONDS_HINT.toLocaleString('en')} diamonds, in whole cents.`,
  WALLET_LOCKED: 'Your wallet is locked.',
  RATE_LIMITED: 'Slow down a little and try again in a moment.',
  INTERNAL: 'Something went wrong on our side. Please try again.',
  NETWORK: 'Cannot reach the server. Check your connection.',
  UNEXPECTED_RESPONSE: 'The server answered something this page does not understand.',
};

class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
    readonly details: ReadonlyArray<{ path: string; message: string }> = [],
    readonly correlationId?: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

function plainWords(error: unknown): string {
  if (!(error instanceof ApiError)) return PLAIN_WORDS.INTERNAL ?? 'Something went wrong.';
  let text = PLAIN_WORDS[error.code] ?? error.message;
  if (error.code === 'VALIDATION_FAILED' && error.details.length > 0) {
    text += ` ${error.details.map((detail) => `${detail.path.replace(/^(body|query|path)\./, '')}: ${detail.message}`).join('; ')}.`;
  }
  if (error.code === 'RATE_LIMITED' && error.retryAfterSeconds !== undefined)
    text += ` (in ${error.retryAfterSeconds} s)`;
  if (error.code === 'INTERNAL' && error.correlationId) text += ` Reference: ${error.correlationId}.`;
  return text;
}

// ---------------------------------------------------------------------------------------------
// Small helpers.
// ---------------------------------------------------------------------------------------------

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A random key for Idempotency-Key and requestId; getRandomValues works on plain http too. */
function newKey(prefix: string): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `${prefix}-${Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('')}`;
}

/** Minor-unit digits of a currency (2 for USD, EUR, GBP; 0 for JPY). */
function currencyDigits(currency: string): number {
  return new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
}

/** Formats minor units exactly: the amount goes to Intl as a decimal string, never as a float. */
function formatMoney(value: Money): string {
  const digits = currencyDigits(value.currency);
  const negative = value.amount < 0;
  const text = String(Math.abs(value.amount)).padStart(digits + 1, '0');
  const decimal = digits === 0 ? text : `${text.slice(0, -digits)}.${text.slice(-digits)}`;
  // Intl formats a decimal string exactly (Intl.NumberFormat v3); the DOM typings only know numbers.
  const format = new Intl.NumberFormat('en', { style: 'currency', currency: value.currency }).format as unknown as (
    input: string,
  ) => string;
  return `${negative ? '-' : ''}${format(decimal)}`;
}

/** "20", "20.5", "20,50" -> minor units, with integer arithmetic only; undefined when not a price. */
function parseMoneyInput(input: string, currency: string): number | undefined {
  const digits = currencyDigits(currency);
  const match = /^\s*(\d{1,7})(?:[.,](\d{1,2}))?\s*$/.exec(input);
  if (!match) return undefined;
  const fraction = (match[2] ?? '').padEnd(digits, '0');
  if (fraction.length > digits) return undefined;
  return Number(match[1]) * 10 ** digits + (fraction === '' ? 0 : Number(fraction));
}

function timeOf(iso: string | undefined): string {
  if (!iso) return '';
  const date = new Date(iso);
  return Number.isNaN(date.getTime())
    ? ''
    : date.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

// ---------------------------------------------------------------------------------------------
// State.
// ---------------------------------------------------------------------------------------------

let session: Session | undefined;
let wallet: Wallet | undefined;
let priceList: z.infer<typeof packagesSchema> | undefined;
let giftCatalog: Gift[] = [];
/** Consent as recharges and gifts judge it (GET /v1/consent); undefined until read. */
let consent: Consent | undefined;
let room: Room | undefined;
let historyCursor: string | null = null;
let streamsTimer: ReturnType<typeof setInterval> | undefined;
let walletRefreshTimer: ReturnType<typeof setTimeout> | undefined;
/** Bumped at sign-out so that loops started for an earlier session stop. */
let sessionEpoch = 0;

function wsBaseUrl(): string {
  const configured = document.querySelector<HTMLMetaElement>('meta[name="ws-url"]')?.content ?? '';
  if (/^wss?:\/\//.test(configured)) return configured.replace(/\/+$/, '');
  // Served without the stack's substitution: assume the local default layout (WS on the next port).
  const port = Number(location.port || (location.protocol === 'https:' ? 443 : 80)) + 1;
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.hostname}:${port}`;
}

// ---------------------------------------------------------------------------------------------
// The API client.
// ---------------------------------------------------------------------------------------------

async function api<S extends z.ZodMiniType>(
  method: string,
  path: string,
  schema: S,
  options: CallOptions = {},
): Promise<z.infer<S>> {
  const headers: Record<string, string> = {};
  if (session) headers.authorization = `Bearer ${session.token}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  if (options.idempotencyKey) headers['idempotency-key'] = options.idempotencyKey;
  for (let attempt = 0; ; attempt += 1) {
    let response: Response;
    try {
      response = await fetch(path, {
        method,
        headers,
        ...(options.body !== undefined && { body: JSON.stringify(options.body) }),
      });
    } catch {
      throw new ApiError('NETWORK', 'network error', 0);
    }
    const text = await response.text();
    let json: unknown;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (response.ok) {
      const parsed = schema.safeParse(json);
      if (!parsed.success)
        throw new ApiError('UNEXPECTED_RESPONSE', `unexpected answer from ${method} ${path}`, response.status);
      return parsed.data;
    }
    const body = errorBodySchema.safeParse(json);
    const retryAfter = Number(response.headers.get('retry-after'));
    const error = body.success
      ? new ApiError(
          body.data.error.code,
          body.data.error.message,
          response.status,
          body.data.error.details ?? [],
          body.data.error.correlationId,
          Number.isFinite(retryAfter) ? retryAfter : undefined,
        )
      : new ApiError(
          response.status >= 500 ? 'INTERNAL' : 'UNEXPECTED_RESPONSE',
          `HTTP ${response.status}`,
          response.status,
        );
    // A rate-limited read, or a write carrying its idempotency key, is safe to send again.
    const retriable = method === 'GET' || options.idempotencyKey !== undefined;
    if (error.code === 'RATE_LIMITED' && retriable && attempt < MAX_RATE_LIMIT_RETRIES) {
      await sleep(Math.min(MAX_RETRY_AFTER_MS, Math.max(1, error.retryAfterSeconds ?? 1) * 1000));
      continue;
    }
    if (error.code === 'UNAUTHORIZED' && session) {
      signOut();
      showError(error);
    }
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// Notices and errors.
// ---------------------------------------------------------------------------------------------

let noticeTimer: ReturnType<typeof setTimeout> | undefined;
let alertTimer: ReturnType<typeof setTimeout> | undefined;

function notify(text: string): void {
  const notice = byId('notice');
  notice.textContent = text;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => (notice.textContent = ''), NOTICE_DURATION_MS);
}

function showError(error: unknown): void {
  if (!(error instanceof ApiError)) console.error(error);
  const text = plainWords(error);
  const checkout = byId<HTMLDialogElement>('checkout');
  if (checkout.open) {
    // The modal dialog covers the page: say it where the person is looking.
    byId('checkout-status').textContent = text;
    byId('checkout-status').dataset.state = 'error';
  }
  const alert = byId('alert');
  alert.textContent = text;
  alert.dataset.code = error instanceof ApiError ? error.code : 'INTERNAL';
  alert.hidden = false;
  clearTimeout(alertTimer);
  alertTimer = setTimeout(() => (alert.hidden = true), NOTICE_DURATION_MS * 2);
}

function clearError(): void {
  clearTimeout(alertTimer);
  const alert = byId('alert');
  alert.hidden = true;
  alert.textContent = '';
  delete alert.dataset.code;
}

/** Sign-out: nothing said to the last person stays on screen for the next one. */
function clearMessages(): void {
  clearError();
  clearTimeout(noticeTimer);
  byId('notice').textContent = '';
  const status = byId('checkout-status');
  status.textContent = '';
  delete status.dataset.state;
  byId('payment-return').hidden = true;
}

/**
 * Runs a button's action with the button disabled, showing any error in words; an error that
 * comes back after a sign-out belongs to the earlier person and is not shown to the next one.
 */
async function busy(button: HTMLButtonElement, action: () => Promise<void>): Promise<void> {
  if (button.disabled) return;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  const epoch = sessionEpoch;
  try {
    await action();
  } catch (error) {
    if (epoch === sessionEpoch) showError(error);
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}

// ---------------------------------------------------------------------------------------------
// Sign-in.
// ---------------------------------------------------------------------------------------------

/** The birthdate of someone who turned `age` yesterday: unambiguous whatever the time zone. */
function birthdateForAge(age: number): string {
  const today = new Date();
  const birth = new Date(Date.UTC(today.getUTCFullYear() - age, today.getUTCMonth(), today.getUTCDate() - 1));
  return birth.toISOString().slice(0, 10);
}

function userIdFromName(name: string): string {
  return name
    .trim()
    .toLowerCase()
    .replace(/[^a-z0-9_.@-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, MAX_NAME_LENGTH);
}

async function signIn(form: HTMLFormElement): Promise<void> {
  const data = new FormData(form);
  const userId = userIdFromName(String(data.get('name') ?? ''));
  if (userId === '')
    throw new ApiError('VALIDATION_FAILED', 'name', 400, [{ path: 'name', message: 'use letters or digits' }]);
  const age = Number(data.get('age'));
  if (!Number.isInteger(age) || age < 1)
    throw new ApiError('VALIDATION_FAILED', 'age', 400, [{ path: 'age', message: 'a whole number of years' }]);
  const country = String(data.get('country') ?? 'US');
  const role = data.get('role') === 'creator' ? 'creator' : 'viewer';
  const { token } = await api('POST', '/dev/tokens', tokenSchema, {
    body: { sub: userId, birthdate: birthdateForAge(age), country, parentalConsent: data.get('consent') === 'on' },
  });
  session = { token, userId, role, country };
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  await enter();
}

function signOut(): void {
  sessionEpoch += 1;
  room?.leave();
  room = undefined;
  session = undefined;
  wallet = undefined;
  consent = undefined;
  checkout = undefined;
  const dialog = byId<HTMLDialogElement>('checkout');
  if (dialog.open) dialog.close();
  clearMessages();
  leaveFamily();
  sessionStorage.removeItem(SESSION_KEY);
  clearInterval(streamsTimer);
  for (const id of ['wallet', 'buy', 'studio', 'lobby', 'room', 'whoami']) byId(id).hidden = true;
  byId('signin').hidden = false;
  delete document.body.dataset.role;
  byId('payouts-list').replaceChildren();
  shownPayoutStatus.clear();
  byId('history-list').replaceChildren();
}

/** What the page's parts (guardian.ts, an operator's desk) get from here: see kit.ts. */
const kit: PageKit = {
  api,
  notify,
  showError,
  userId: () => session?.userId,
  epoch: () => sessionEpoch,
  busy,
};

/**
 * Whether the signed-in person is a teenager, by the token's birthdate and country and the
 * API's own rule (shared/domain/identity.ts): only they need a guardian. The server decides
 * every request; this only chooses what the page shows.
 */
function signedInAs(): 'teen' | 'adult' | 'child' {
  if (!session) return 'child';
  const claims = tokenClaims(session.token);
  const birthdate =
    typeof claims.birthdate === 'string' && isCalendarDate(claims.birthdate) ? claims.birthdate : undefined;
  if (birthdate === undefined) return 'child';
  const age = ageOn(birthdate, new Date());
  if (age >= ageOfMajority(session.country)) return 'adult';
  return age >= MINIMUM_AGE ? 'teen' : 'child';
}

/** Consent decides whether buying and gifting are open; a change re-renders both. */
function applyConsent(fresh: Consent): void {
  consent = fresh;
  renderConsent(fresh);
  renderSpendable();
}

/**
 * A teenager sees the consent card (why buying and gifting are closed, or who allowed them),
 * kept current; an adult sees "Family", where a guardian answers. A child sees neither.
 */
async function enterConsent(): Promise<void> {
  const who = signedInAs();
  if (who === 'adult') {
    await enterFamily(kit, wallet?.budget.spentThisMonth.currency ?? 'USD');
    return;
  }
  if (who !== 'teen') return;
  applyConsent(await loadConsent(kit));
  watchConsent(kit, applyConsent);
}

async function enter(): Promise<void> {
  if (!session) return;
  const current = session;
  clearError();
  byId('signin').hidden = true;
  byId('whoami').hidden = false;
  byId('whoami-name').textContent = `${current.userId} · ${current.role} · ${current.country}`;
  document.body.dataset.role = current.role;
  byId('wallet').hidden = false;
  byId('buy').hidden = false;
  byId('studio').hidden = current.role !== 'creator';
  byId('lobby').hidden = current.role !== 'viewer';
  await Promise.all([refreshWallet(), loadCatalog(), loadGifts(), enterConsent()]);
  if (current.role === 'creator') {
    await Promise.all([resumeOwnStream(), refreshPayoutAccount(), refreshPayouts()]);
  } else {
    await refreshStreams();
    startStreamsRefresh();
  }
}

// ---------------------------------------------------------------------------------------------
// Wallet, budget, history.
// ---------------------------------------------------------------------------------------------

function setCount(id: string, value: number): void {
  const node = byId(id);
  node.textContent = count(value);
  node.dataset.value = String(value);
}

function renderWallet(): void {
  if (!wallet) return;
  setCount('wallet-coins', wallet.coins);
  setCount('wallet-diamonds', wallet.diamonds);
  setCount('wallet-pending', wallet.pendingDiamonds);
  const owed = byId('wallet-owed');
  owed.hidden = wallet.owedCoins <= 0;
  owed.textContent = `You owe ${amountOf(wallet.owedCoins, 'coin')} after a disputed payment; your next purchase pays them first.`;
  const locked = byId('wallet-locked');
  locked.hidden = !wallet.locked;
  locked.textContent = '🔒 Your wallet is locked: buying, gifting and payouts are paused.';
  // In the room, the balance that matters there: coins to spend, or diamonds arriving.
  byId('room-balance').textContent =
    session?.role === 'creator' ? `💎 ${amountOf(wallet.diamonds, 'diamond')}` : `🪙 ${amountOf(wallet.coins, 'coin')}`;
  const budget = wallet.budget;
  byId('budget-current').textContent = budget.monthlyLimit
    ? `Monthly budget ${formatMoney(budget.monthlyLimit)}; spent this month ${formatMoney(budget.spentThisMonth)}.`
    : `No monthly budget; spent this month ${formatMoney(budget.spentThisMonth)}.`;
  renderPayoutEstimate();
  renderSpendable();
}

/** A wallet push (WS) carries the balances only; the budget and history come from a re-fetch. */
function applyWalletPush(update: { coins: number; diamonds: number; pendingDiamonds: number }): void {
  if (!wallet) return;
  const gained = update.diamonds - wallet.diamonds;
  wallet = { ...wallet, coins: update.coins, diamonds: update.diamonds, pendingDiamonds: update.pendingDiamonds };
  renderWallet();
  if (gained > 0) popDiamonds(gained);
  scheduleWalletRefresh();
}

function popDiamonds(gained: number): void {
  const pop = byId('diamond-pop');
  pop.textContent = ` +${count(gained)}`;
  pop.classList.remove('show');
  // Restart the CSS animation: reading layout in between makes the browser see a new start.
  void pop.offsetWidth;
  pop.classList.add('show');
}

async function refreshWallet(): Promise<void> {
  const before = wallet?.diamonds;
  const [fresh] = await Promise.all([api('GET', '/v1/wallet', walletSchema), refreshHistory()]);
  wallet = fresh;
  renderWallet();
  if (before !== undefined && fresh.diamonds > before) popDiamonds(fresh.diamonds - before);
}

function scheduleWalletRefresh(): void {
  clearTimeout(walletRefreshTimer);
  const epoch = sessionEpoch;
  walletRefreshTimer = setTimeout(() => {
    if (epoch === sessionEpoch) refreshWallet().catch(showError);
  }, WALLET_REFRESH_DEBOUNCE_MS);
}

const TRANSACTION_WORDS: Readonly<Record<string, string>> = {
  recharge: 'Bought coins',
  gift_sent: 'Sent a gift',
  gift_received: 'Gift received',
  payout_requested: 'Payout requested',
  payout_paid: 'Payout paid',
  payout_reversed: 'Payout returned',
  chargeback: 'Payment disputed',
};

function signed(value: number | undefined, unit: 'coin' | 'diamond' | 'pending'): string {
  if (!value) return '';
  const amount = unit === 'pending' ? `${count(Math.abs(value))} pending` : amountOf(Math.abs(value), unit);
  return `${value > 0 ? '+' : '−'}${amount}`;
}

function historyItem(entry: Transaction): HTMLLIElement {
  const amounts = [
    signed(entry.coins, 'coin'),
    signed(entry.diamonds, 'diamond'),
    signed(entry.pendingDiamonds, 'pending'),
  ]
    .filter(Boolean)
    .join(', ');
  return element(
    'li',
    { 'data-testid': 'history-item', 'data-type': entry.type },
    element('span', {}, TRANSACTION_WORDS[entry.type] ?? entry.type),
    element('span', { class: 'amount' }, amounts),
    element('time', { datetime: entry.createdAt }, timeOf(entry.createdAt)),
  );
}

async function refreshHistory(more = false): Promise<void> {
  const cursor = more && historyCursor ? `&cursor=${encodeURIComponent(historyCursor)}` : '';
  const page = await api('GET', `/v1/wallet/transactions?limit=${HISTORY_PAGE_SIZE}${cursor}`, transactionsSchema);
  const list = byId('history-list');
  const items = page.items.map(historyItem);
  if (more) list.append(...items);
  else list.replaceChildren(...items);
  if (!more && items.length === 0) list.append(element('li', { class: 'fine' }, 'Nothing yet.'));
  historyCursor = page.nextCursor ?? null;
  byId('history-more').hidden = historyCursor === null;
}

async function saveBudget(clear: boolean): Promise<void> {
  // Pressed before the first wallet load finished: load it now rather than ignore the press.
  if (!wallet) await refreshWallet();
  if (!wallet) return;
  const currency = priceList?.currency ?? wallet.budget.spentThisMonth.currency;
  let monthlyLimit: Money | null = null;
  if (!clear) {
    const amount = parseMoneyInput(byId<HTMLInputElement>('budget-amount').value, currency);
    if (amount === undefined)
      throw new ApiError('VALIDATION_FAILED', 'budget', 400, [
        { path: 'budget', message: `an amount such as 20.00 (${currency})` },
      ]);
    monthlyLimit = { amount, currency };
  }
  wallet = await api('PUT', '/v1/wallet/budget', walletSchema, { body: { monthlyLimit } });
  renderWallet();
  notify(monthlyLimit ? `Monthly budget set to ${formatMoney(monthlyLimit)}.` : 'Monthly budget removed.');
}

// ---------------------------------------------------------------------------------------------
// Buying coins.
// ---------------------------------------------------------------------------------------------

/** An offer on a package: its price or bonus, and when it ends (in the person's time zone). */
function offerBadge(pack: CoinPackage): HTMLElement {
  const offer = pack.offer;
  if (!offer) return element('span', {});
  const ends = new Date(offer.endsAt).toLocaleString('en', { dateStyle: 'medium', timeStyle: 'short' });
  const what =
    offer.bonusCoins > 0
      ? `+${count(offer.bonusCoins)} bonus ${offer.bonusCoins === 1 ? 'coin' : 'coins'}`
      : `now ${formatMoney(offer.price)}`;
  const first = offer.firstRechargeOnly ? ' · first recharge' : '';
  return element(
    'span',
    { class: 'offer', 'data-testid': `package-offer-${pack.id}`, 'data-ends-at': offer.endsAt },
    `🎁 ${what}${first} · ends ${ends}`,
  );
}

async function loadCatalog(): Promise<void> {
  if (!session) return;
  const list = byId('package-list');
  try {
    priceList = await api('GET', `/v1/packages?country=${encodeURIComponent(session.country)}`, packagesSchema);
  } catch (error) {
    priceList = undefined;
    list.replaceChildren();
    byId('buy-region').textContent = plainWords(error);
    return;
  }
  byId('buy-region').textContent = `Prices for ${priceList.country}, in ${priceList.currency}.`;
  list.replaceChildren(
    ...priceList.packages.map((pack) => {
      const button = element(
        'button',
        {
          type: 'button',
          'data-testid': `package-${pack.id}`,
          'aria-label': `Buy ${amountOf(pack.coins, 'coin')} for ${formatMoney(pack.price)}`,
        },
        element('span', { class: 'coins' }, `🪙 ${count(pack.coins)}`),
        element(
          'span',
          { class: pack.offer && pack.offer.price.amount < pack.price.amount ? 'price was' : 'price' },
          formatMoney(pack.price),
        ),
        ...(pack.offer ? [offerBadge(pack)] : []),
      );
      button.addEventListener('click', () => openCheckout(pack));
      return element('li', {}, button);
    }),
  );
  renderSpendable();
}

/** One checkout = one idempotency key: pressing Pay twice, or again after a dropped answer, buys once. */
let checkout: { pack: CoinPackage; key: string; method: string } | undefined;

/** sessionStorage: the recharge a PayPal redirect is paying, to pick up when PayPal sends the person back. */
const REDIRECT_PAYMENT_KEY = 'live-gifting.redirect-payment';
const redirectPaymentSchema = z.object({ rechargeId: z.string(), coins: z.int(), bonusCoins: z.int() });

interface Breakdown {
  coins: Money;
  discount: Money;
  platformFee: Money;
  methodFee: Money;
  total: Money;
}

/** The all-in price before paying, from the catalog: what POST /v1/recharges will charge (it is sent as expectedTotal). */
function quoteFor(pack: CoinPackage, method: string): Breakdown | undefined {
  const list = priceList;
  const chosen = list?.methods.find((candidate) => candidate.method === method);
  if (!list || !chosen) return undefined;
  const currency = pack.price.currency;
  const platformFee = list.platformFee ?? { amount: 0, currency };
  const offerPrice = pack.offer?.price.amount ?? pack.price.amount;
  const coinsValue = pack.price.amount - platformFee.amount;
  return {
    coins: { amount: coinsValue, currency },
    discount: { amount: pack.price.amount - offerPrice, currency },
    platformFee,
    methodFee: chosen.fee,
    total: { amount: offerPrice + chosen.fee.amount, currency },
  };
}

function renderBreakdown(pack: CoinPackage, method: string): void {
  const quote = quoteFor(pack, method);
  if (!quote) return;
  const bonus = pack.offer?.bonusCoins ?? 0;
  const coinsText =
    bonus > 0 ? `${amountOf(pack.coins, 'coin')} + ${count(bonus)} bonus` : `${amountOf(pack.coins, 'coin')}`;
  byId('checkout-summary').textContent = `${coinsText} for ${formatMoney(quote.total)}.`;
  const row = (label: string, value: Money, testId: string) =>
    element('li', { 'data-testid': testId }, element('span', {}, label), element('span', {}, formatMoney(value)));
  const rows = [row(`${amountOf(pack.coins, 'coin')}`, quote.coins, 'breakdown-coins')];
  if (quote.discount.amount > 0)
    rows.push(row('Offer discount', { ...quote.discount, amount: -quote.discount.amount }, 'breakdown-discount'));
  rows.push(row('Platform fee', quote.platformFee, 'breakdown-platform-fee'));
  rows.push(row(`${method === 'paypal' ? 'PayPal' : 'Card'} fee`, quote.methodFee, 'breakdown-method-fee'));
  rows.push(row('Total', quote.total, 'breakdown-total'));
  byId('checkout-breakdown').replaceChildren(...rows);
  byId('checkout-pay').textContent = `Pay ${formatMoney(quote.total)}${method === 'paypal' ? ' with PayPal' : ''}`;
  byId('checkout-pay').setAttribute('aria-label', `Pay ${formatMoney(quote.total)} for ${coinsText}`);
}

function renderMethods(pack: CoinPackage): void {
  const methods = priceList?.methods ?? [];
  byId('checkout-methods').replaceChildren(
    ...methods.map((offer) => {
      const input = element('input', {
        type: 'radio',
        name: 'checkout-method',
        value: offer.method,
        'data-testid': `method-${offer.method}`,
      });
      input.checked = offer.method === checkout?.method;
      input.addEventListener('change', () => {
        if (!checkout) return;
        checkout.method = offer.method;
        renderBreakdown(pack, offer.method);
      });
      const label = offer.method === 'paypal' ? 'PayPal (you will be sent to PayPal)' : 'Card';
      return element('label', {}, input, ` ${label}`);
    }),
  );
}

function openCheckout(pack: CoinPackage): void {
  checkout = { pack, key: newKey('recharge'), method: 'card' };
  renderMethods(pack);
  renderBreakdown(pack, 'card');
  const status = byId('checkout-status');
  status.textContent = '';
  delete status.dataset.state;
  byId<HTMLDialogElement>('checkout').showModal();
}

function checkoutStatus(text: string, state: 'working' | 'done' | 'error'): void {
  const status = byId('checkout-status');
  status.textContent = text;
  status.dataset.state = state;
}

async function pay(): Promise<void> {
  if (!checkout) return;
  const { pack, key, method } = checkout;
  const quote = quoteFor(pack, method);
  checkoutStatus('Creating the payment…', 'working');
  const recharge = await api('POST', '/v1/recharges', rechargeCreatedSchema, {
    body: {
      packageId: pack.id,
      method,
      ...(pack.offer && { offerId: pack.offer.offerId }),
      ...(quote && { expectedTotal: quote.total }),
      ...(method === 'paypal' && { returnUrl: `${location.origin}/` }),
    },
    idempotencyKey: key,
  });
  if (recharge.payment.redirectUrl !== undefined) {
    checkoutStatus('Taking you to PayPal…', 'working');
    const pending = { rechargeId: recharge.rechargeId, coins: recharge.coins, bonusCoins: recharge.bonusCoins ?? 0 };
    sessionStorage.setItem(REDIRECT_PAYMENT_KEY, JSON.stringify(pending));
    location.assign(recharge.payment.redirectUrl);
    return;
  }
  checkoutStatus('Confirming the payment with the card processor…', 'working');
  // Local stack only: the payments stand-in completes the PaymentIntent and sends the signed
  // webhook, as Stripe would once the card is confirmed.
  await api('POST', `/dev/payments/${encodeURIComponent(recharge.payment.paymentIntentId)}/succeed`, z.unknown());
  checkoutStatus('Payment received. Adding your coins…', 'working');
  const outcome = await awaitCredit(recharge.rechargeId);
  if (outcome === 'pending') {
    checkoutStatus('The payment is still being processed. Your coins will appear when it completes.', 'working');
    return;
  }
  await refreshWallet();
  const added = recharge.coins + (recharge.bonusCoins ?? 0);
  checkoutStatus(`Done: ${amountOf(added, 'coin')} added.`, 'done');
  checkout = undefined;
  byId<HTMLDialogElement>('checkout').close();
  notify(`${amountOf(added, 'coin')} added to your wallet.`);
}

/** Polls the recharge until the webhook credited it, it failed, or the deadline passed. */
async function awaitCredit(rechargeId: string): Promise<'succeeded' | 'pending'> {
  const deadline = Date.now() + RECHARGE_POLL_DEADLINE_MS;
  for (;;) {
    const current = await api('GET', `/v1/recharges/${encodeURIComponent(rechargeId)}`, rechargeSchema);
    if (current.status === 'succeeded') return 'succeeded';
    if (current.status === 'failed' || current.status === 'disputed')
      throw new ApiError('PAYMENT_FAILED', 'The payment did not go through.', 402);
    if (Date.now() > deadline) return 'pending';
    await sleep(RECHARGE_POLL_INTERVAL_MS);
  }
}

/**
 * Back from PayPal: Stripe's `redirect_status` says what the person did there; the coins still
 * come only with the webhook, so a success waits for the recharge to be credited.
 */
async function resumeRedirectPayment(): Promise<void> {
  const params = new URLSearchParams(location.search);
  const redirectStatus = params.get('redirect_status');
  const stored = sessionStorage.getItem(REDIRECT_PAYMENT_KEY);
  if (redirectStatus === null || stored === null) return;
  sessionStorage.removeItem(REDIRECT_PAYMENT_KEY);
  history.replaceState(null, '', location.pathname);
  const pending = redirectPaymentSchema.safeParse(JSON.parse(stored));
  if (!pending.success) return;
  const added = pending.data.coins + pending.data.bonusCoins;
  const status = byId('payment-return');
  status.hidden = false;
  status.dataset.state = redirectStatus;
  if (redirectStatus === 'failed') {
    status.textContent = 'PayPal payment cancelled: nothing was charged.';
    return;
  }
  if (redirectStatus === 'processing') {
    status.textContent = `PayPal approved the payment. Your ${amountOf(added, 'coin')} arrive when it settles.`;
    return;
  }
  status.textContent = 'PayPal approved the payment. Adding your coins…';
  if ((await awaitCredit(pending.data.rechargeId)) === 'succeeded') {
    await refreshWallet();
    status.textContent = `Paid with PayPal: ${amountOf(added, 'coin')} added.`;
    notify(`${amountOf(added, 'coin')} added to your wallet.`);
  }
}

// ---------------------------------------------------------------------------------------------
// Streams: the lobby (viewers) and the studio (creators).
// ---------------------------------------------------------------------------------------------

const nameOf = (giftId: string) => giftCatalog.find((gift) => gift.id === giftId)?.name ?? giftId;

async function loadGifts(): Promise<void> {
  giftCatalog = (await api('GET', '/v1/gifts', giftsSchema)).gifts;
  byId('gift-list').replaceChildren(
    ...giftCatalog.map((gift) => {
      const button = element(
        'button',
        {
          type: 'button',
          class: 'gift',
          'data-testid': `gift-${gift.id}`,
          'aria-label': `Send ${gift.name}, ${amountOf(gift.coins, 'coin')} each`,
        },
        giftImage(gift.id, gift.name),
        element('span', { class: 'name' }, gift.name),
        element('span', { class: 'cost' }, amountOf(gift.coins, 'coin')),
        element('span', { class: 'reason', 'data-testid': `gift-reason-${gift.id}` }),
      );
      button.dataset.giftId = gift.id;
      button.dataset.coins = String(gift.coins);
      button.addEventListener('click', () => {
        const quantity = Number(byId<HTMLInputElement>('gift-quantity').value);
        if (!Number.isInteger(quantity) || quantity < 1 || quantity > 99) {
          showError(
            new ApiError('VALIDATION_FAILED', 'quantity', 400, [
              { path: 'quantity', message: 'a whole number from 1 to 99' },
            ]),
          );
          return;
        }
        room?.sendGift(gift, quantity);
      });
      return element('li', {}, button);
    }),
  );
  renderSpendable();
}

/** Why this person cannot spend at all right now, in words; undefined when they can. */
function spendBlockedReason(): string | undefined {
  if (consent && !consent.consented)
    return consent.appConsent === 'revoked'
      ? 'Your guardian withdrew permission'
      : "Needs a parent's or guardian's permission";
  if (wallet?.locked) return 'Your wallet is locked';
  return undefined;
}

/** The gift quantity typed in, or 1 while the field does not hold a whole number from 1 to 99. */
function giftQuantity(): number {
  const quantity = Number(byId<HTMLInputElement>('gift-quantity').value);
  return Number.isInteger(quantity) && quantity >= 1 && quantity <= 99 ? quantity : 1;
}

/**
 * Buttons that spend are enabled only when the server would accept them: a gift the balance
 * cannot pay (at the quantity chosen) says how many coins are missing; a closed wallet or
 * missing consent says so on every package and gift. Re-run whenever the balance, the
 * quantity, the consent or the room changes.
 */
function renderSpendable(): void {
  const blocked = spendBlockedReason();
  const notice = byId('buy-blocked');
  notice.hidden = blocked === undefined;
  notice.textContent = blocked ? `${blocked}: buying coins is closed.` : '';
  byId('package-list')
    .querySelectorAll('button')
    .forEach((button) => {
      button.disabled = blocked !== undefined;
    });
  const quantity = giftQuantity();
  byId('gift-list')
    .querySelectorAll<HTMLButtonElement>('button[data-gift-id]')
    .forEach((button) => {
      const cost = Number(button.dataset.coins) * quantity;
      let reason = blocked;
      if (room?.hasEnded) reason = 'The stream has ended';
      else if (reason === undefined && wallet && cost > wallet.coins)
        reason = `Needs ${amountOf(cost - wallet.coins, 'more coin')}`;
      button.disabled = reason !== undefined;
      button.title = reason ?? '';
      const text = button.querySelector<HTMLElement>('.reason');
      if (text) text.textContent = reason ?? '';
    });
}

/** A creator's credentials in a line: name, verified badge, since when, how many streams, gifts received. */
function profileFacts(profile: Profile): HTMLElement {
  const since = new Date(profile.streamingSince);
  const sinceText = Number.isNaN(since.getTime())
    ? ''
    : since.toLocaleDateString('en', { year: 'numeric', month: 'short', day: 'numeric' });
  return element(
    'span',
    { class: 'profile-facts', 'data-testid': 'creator-profile', 'data-creator-id': profile.creatorId },
    element('strong', { 'data-testid': 'creator-name' }, profile.displayName),
    ...(profile.verified
      ? [element('span', { class: 'badge verified', 'data-testid': 'creator-verified' }, '✓ Verified')]
      : []),
    element(
      'small',
      { 'data-testid': 'creator-facts' },
      [
        sinceText ? `streaming since ${sinceText}` : '',
        amountOf(profile.streams, 'stream'),
        `${amountOf(profile.giftCoinsReceived, 'coin')} in gifts received`,
      ]
        .filter(Boolean)
        .join(' · '),
    ),
  );
}

/** The room's creator, for a viewer checking before gifting; a creator without a profile yet shows by id. */
function renderProfile(profile: Profile | undefined, creatorId: string): void {
  const box = byId('room-creator');
  box.hidden = false;
  box.replaceChildren(
    profile
      ? profileFacts(profile)
      : element('span', { class: 'profile-facts' }, element('strong', {}, creatorId), ' · new creator'),
  );
}

async function refreshStreams(): Promise<void> {
  if (session?.role !== 'viewer') return;
  const { items } = await api('GET', '/v1/streams', streamsSchema);
  const live = items.filter((stream) => stream.status === 'live');
  byId('streams-empty').hidden = live.length > 0;
  byId('streams-list').replaceChildren(
    ...live.map((stream) => {
      const join = element(
        'button',
        {
          type: 'button',
          'data-testid': 'join-stream',
          'data-stream-id': stream.streamId,
          'aria-label': `Join ${stream.title} by ${stream.creator?.displayName ?? stream.creatorId}`,
        },
        'Join',
      );
      join.addEventListener('click', () => joinStream(stream, false));
      const current = room?.streamId === stream.streamId;
      if (current) join.textContent = 'Watching';
      return element(
        'li',
        { 'data-testid': 'stream-item', 'data-stream-id': stream.streamId },
        element('span', { class: 'live-dot', 'aria-hidden': 'true' }),
        element(
          'span',
          { class: 'stream-title' },
          element('strong', {}, stream.title),
          element('small', {}, `${stream.startedAt ? ` live since ${timeOf(stream.startedAt)}` : ''}`),
          stream.creator
            ? profileFacts(stream.creator)
            : element('span', { class: 'profile-facts' }, element('strong', {}, stream.creatorId)),
        ),
        join,
      );
    }),
  );
}

function startStreamsRefresh(): void {
  clearInterval(streamsTimer);
  const epoch = sessionEpoch;
  streamsTimer = setInterval(() => {
    if (epoch !== sessionEpoch || document.hidden || !session || session.role !== 'viewer') return;
    refreshStreams().catch(() => undefined);
  }, STREAMS_REFRESH_INTERVAL_MS);
}

function joinStream(stream: Stream, asCreator: boolean): void {
  if (room?.streamId === stream.streamId) return;
  room?.leave();
  room = new Room(stream, asCreator);
  room.start();
  void refreshStreams().catch(() => undefined);
}

function leaveRoom(): void {
  room?.leave();
  room = undefined;
  byId('room').hidden = true;
  void refreshStreams().catch(() => undefined);
}

function showLiveControls(stream: Stream | undefined): void {
  byId('golive-form').hidden = stream !== undefined;
  byId('live-controls').hidden = stream === undefined;
  byId('studio-stream-title').textContent = stream?.title ?? '';
}

/** After a reload, a creator who is still live lands back in their room. */
async function resumeOwnStream(): Promise<void> {
  if (!session) return;
  const userId = session.userId;
  const { items } = await api('GET', '/v1/streams', streamsSchema);
  const own = items.find((stream) => stream.creatorId === userId && stream.status === 'live');
  showLiveControls(own);
  if (own) joinStream(own, true);
}

async function goLive(form: HTMLFormElement): Promise<void> {
  const title = String(new FormData(form).get('title') ?? '').trim();
  const stream = await api('POST', '/v1/streams', streamSchema, { body: { title } });
  form.reset();
  showLiveControls(stream);
  joinStream(stream, true);
  notify('You are live. Share the page with a viewer in another tab.');
}

async function endStream(): Promise<void> {
  if (!room) return;
  await api('POST', `/v1/streams/${encodeURIComponent(room.streamId)}/end`, streamSchema);
  room.markEnded();
  showLiveControls(undefined);
  notify('Your stream has ended.');
}

// ---------------------------------------------------------------------------------------------
// The live room: WebSocket, catch-up, feed, animations, leaderboard.
// ---------------------------------------------------------------------------------------------

interface PendingGift {
  gift: Gift;
  quantity: number;
  createdAt: number;
  sent: boolean;
}

/** A token this close to its expiry is refreshed before it is used for a (re)connection. */
const TOKEN_REFRESH_MARGIN_MS = 5 * 60_000;

function tokenClaims(token: string): Record<string, unknown> {
  try {
    const payload = token.split('.')[1] ?? '';
    const claims: unknown = JSON.parse(atob(payload.replace(/-/g, '+').replace(/_/g, '/')));
    return typeof claims === 'object' && claims !== null ? (claims as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/**
 * A new ID token for the same person. The demo's identity provider is /dev/tokens; an app on
 * Cognito calls InitiateAuth with REFRESH_TOKEN_AUTH instead (docs: the client example).
 */
async function refreshToken(): Promise<string> {
  if (!session) throw new ApiError('UNAUTHORIZED', 'signed out', 401);
  const claims = tokenClaims(session.token);
  const { token } = await api('POST', '/dev/tokens', tokenSchema, {
    body: {
      sub: session.userId,
      ...(typeof claims.birthdate === 'string' && { birthdate: claims.birthdate }),
      country: typeof claims.country === 'string' ? claims.country : session.country,
      parentalConsent: claims.parental_consent === true,
    },
  });
  session = { ...session, token };
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  return token;
}

async function freshToken(): Promise<string> {
  if (!session) throw new ApiError('UNAUTHORIZED', 'signed out', 401);
  const exp = tokenClaims(session.token).exp;
  if (typeof exp === 'number' && exp * 1000 - Date.now() > TOKEN_REFRESH_MARGIN_MS) return session.token;
  return refreshToken();
}

/** Whether an HTTP route refuses the token (401), or could not be reached at all (network). */
async function tokenRefused(token: string): Promise<'refused' | 'accepted' | 'network'> {
  try {
    const response = await fetch('/v1/wallet', { headers: { authorization: `Bearer ${token}` } });
    return response.status === 401 ? 'refused' : 'accepted';
  } catch {
    return 'network';
  }
}

class Room {
  readonly streamId: string;
  private socket: WebSocket | undefined;
  /** The room's Event API channel (room-channel.ts): the broadcast's frames, besides the socket's. */
  private channel: RoomSubscription | undefined;
  private channelFrames = 0;
  private left = false;
  private ended: boolean;
  private reconnectAttempts = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private statsTimers: { soon?: ReturnType<typeof setTimeout>; trailing?: ReturnType<typeof setTimeout> } = {};
  /** The highest seq applied: events are applied once each, in order. */
  private lastSeq = 0;
  private readonly ahead = new Map<number, GiftEvent>();
  /** Seqs that came live while an earlier gap was filled: they animate even if catch-up reads them first. */
  private readonly seenLive = new Set<number>();
  private catchingUp = false;
  private catchUpAgain = false;
  private gapAttempts = 0;
  private readonly pending = new Map<string, PendingGift>();
  private animations = 0;
  /** `room` messages seen: a read of the stream that started before one does not overwrite it. */
  private roomMessages = 0;

  constructor(
    private readonly stream: Stream,
    private readonly asCreator: boolean,
  ) {
    this.streamId = stream.streamId;
    this.ended = stream.status !== 'live';
  }

  start(): void {
    byId('room').hidden = false;
    byId('room').dataset.streamId = this.streamId;
    byId('room-title').textContent = this.stream.title;
    byId('room-leave').hidden = this.asCreator;
    byId('gift-tray').hidden = this.asCreator;
    byId('gift-feed').replaceChildren();
    byId('leaderboard').replaceChildren();
    byId('leaderboard-empty').hidden = true;
    byId('animation-layer').replaceChildren();
    this.showCounters(this.stream.viewers, this.stream.giftCoins);
    renderProfile(this.stream.creator ?? undefined, this.stream.creatorId);
    byId('stage-caption').textContent = this.asCreator
      ? 'Gifts from your viewers land here.'
      : `${this.stream.creatorId} is live`;
    this.renderStatus();
    renderSpendable();
    this.connect();
    this.subscribeChannel();
    this.refreshStats();
  }

  /** Frames from the room's channel go through the same reader as the socket's; seq keeps them once. */
  private subscribeChannel(): void {
    if (this.ended) return;
    const status = byId('connection-status');
    freshToken()
      .then((token) =>
        subscribeToRoom(this.streamId, token, (frame) => {
          this.channelFrames += 1;
          status.dataset.channelFrames = String(this.channelFrames);
          this.onFrame(JSON.stringify(frame));
        }),
      )
      .then(
        (channel) => {
          if (this.left) {
            channel.close();
            return;
          }
          this.channel = channel;
          status.dataset.channel = 'subscribed';
          // Frames published before the subscription took effect come from the events route.
          this.catchUp();
        },
        () => {
          // No channel (no stand-in, an untrusted certificate, an ended room): the socket's frames remain.
          status.dataset.channel = 'unavailable';
        },
      );
  }

  leave(): void {
    this.left = true;
    this.channel?.close();
    clearTimeout(this.reconnectTimer);
    clearInterval(this.pingTimer);
    clearTimeout(this.statsTimers.soon);
    clearTimeout(this.statsTimers.trailing);
    this.socket?.close(1000, 'left');
  }

  get hasEnded(): boolean {
    return this.ended;
  }

  markEnded(): void {
    this.ended = true;
    this.renderStatus();
    byId('stage-caption').textContent = 'The stream has ended.';
    renderSpendable();
  }

  sendGift(gift: Gift, quantity: number): void {
    if (this.ended) {
      showError(new ApiError('STREAM_NOT_LIVE', 'ended', 409));
      return;
    }
    // The requestId is the idempotency key: a resend after a dropped connection cannot spend twice.
    const requestId = newKey('gift');
    this.pending.set(requestId, { gift, quantity, createdAt: Date.now(), sent: false });
    this.flushPending(false);
    notify(`Sending ${quantity} × ${gift.name}…`);
  }

  /**
   * Sends the gifts not sent yet; after a reconnect (`resendUnacknowledged`) also those sent on
   * the lost connection whose answer never came: the server answers a repeated requestId with
   * the first result instead of spending again.
   */
  private flushPending(resendUnacknowledged: boolean): void {
    if (this.socket?.readyState !== WebSocket.OPEN) return;
    const now = Date.now();
    for (const [requestId, entry] of this.pending) {
      if (entry.sent && !resendUnacknowledged) continue;
      if (now - entry.createdAt > PENDING_GIFT_RESEND_WINDOW_MS) {
        this.pending.delete(requestId);
        notify(`${entry.gift.name} was not confirmed; check your wallet before sending again.`);
        continue;
      }
      this.socket.send(
        JSON.stringify({ action: 'sendGift', requestId, giftId: entry.gift.id, quantity: entry.quantity }),
      );
      entry.sent = true;
    }
  }

  private connect(): void {
    if (!session || this.left) return;
    this.setConnection(this.reconnectAttempts === 0 ? 'connecting' : 'reconnecting');
    // ID tokens last an hour and API Gateway closes every connection after two: a reconnect
    // carries a token that is still good for a while.
    freshToken().then(
      (token) => this.open(token),
      () => this.scheduleReconnect(),
    );
  }

  private open(token: string): void {
    if (!session || this.left) return;
    const url = `${wsBaseUrl()}/?token=${encodeURIComponent(token)}&streamId=${encodeURIComponent(this.streamId)}`;
    const socket = new WebSocket(url);
    this.socket = socket;
    let opened = false;
    socket.addEventListener('open', () => {
      if (this.socket !== socket) return;
      opened = true;
      this.reconnectAttempts = 0;
      this.setConnection('connected');
      clearInterval(this.pingTimer);
      this.pingTimer = setInterval(
        () => socket.readyState === WebSocket.OPEN && socket.send(JSON.stringify({ action: 'ping' })),
        PING_INTERVAL_MS,
      );
      this.flushPending(true);
      // Whatever was broadcast while we were away (or before we came) comes from the events route.
      this.catchUp();
      this.readCounters();
    });
    socket.addEventListener('message', (event) => {
      if (this.socket === socket) this.onFrame(event.data);
    });
    socket.addEventListener('close', () => {
      if (this.socket !== socket) return;
      clearInterval(this.pingTimer);
      if (this.left) return;
      if (this.ended) {
        this.setConnection('closed');
        return;
      }
      if (opened) {
        this.scheduleReconnect();
        return;
      }
      // A browser shows a refused upgrade and a dead network alike (close 1006, before open):
      // the same token on an HTTP route tells a 401 (refresh it, then reconnect) from a drop.
      void tokenRefused(token).then(async (refused) => {
        if (refused === 'refused') await refreshToken().catch(() => undefined);
        this.scheduleReconnect();
      });
    });
  }

  private scheduleReconnect(): void {
    if (this.reconnectAttempts >= MAX_RECONNECT_ATTEMPTS) {
      this.setConnection('lost');
      showError(new ApiError('NETWORK', 'websocket', 0));
      return;
    }
    // Exponential backoff with jitter, so a server restart is not met by every viewer at once.
    const ceiling = Math.min(RECONNECT_MAX_DELAY_MS, RECONNECT_BASE_DELAY_MS * 2 ** this.reconnectAttempts);
    const delay = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
    this.reconnectAttempts += 1;
    this.setConnection('reconnecting');
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  private setConnection(state: 'connecting' | 'connected' | 'reconnecting' | 'closed' | 'lost'): void {
    const words = {
      connecting: 'Connecting…',
      connected: 'Connected',
      reconnecting: 'Reconnecting…',
      closed: 'Disconnected',
      lost: 'Connection lost',
    } as const;
    const node = byId('connection-status');
    node.textContent = words[state];
    node.dataset.state = state;
  }

  private renderStatus(): void {
    const node = byId('room-status');
    node.textContent = this.ended ? 'Ended' : '● Live';
    node.dataset.state = this.ended ? 'ended' : 'live';
  }

  private onFrame(data: unknown): void {
    if (typeof data !== 'string') return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(data);
    } catch {
      return;
    }
    const batch = batchSchema.safeParse(parsed);
    const messages = batch.success ? batch.data.events : [parsed];
    for (const raw of messages) {
      const message = serverMessageSchema.safeParse(raw);
      // Message types this page does not know yet are skipped (the server may add some).
      if (message.success) this.onMessage(message.data);
    }
  }

  private onMessage(message: ServerMessage): void {
    switch (message.type) {
      case 'gift':
        this.deliver(message, 'live');
        return;
      case 'giftAck': {
        const entry = this.pending.get(message.requestId);
        this.pending.delete(message.requestId);
        if (wallet) {
          wallet = { ...wallet, coins: message.wallet.coins };
          renderWallet();
        }
        if (entry) notify(`Sent ${entry.quantity} × ${entry.gift.name}.`);
        clearError();
        scheduleWalletRefresh();
        return;
      }
      case 'error': {
        if (message.requestId) this.pending.delete(message.requestId);
        if (message.error.code === 'STREAM_NOT_LIVE') this.markEnded();
        showError(new ApiError(message.error.code, message.error.message, 0));
        return;
      }
      case 'wallet':
        applyWalletPush(message);
        return;
      case 'streamEnded':
        if (message.streamId === this.streamId) {
          this.markEnded();
          if (this.asCreator) showLiveControls(undefined);
          else notify(`${this.stream.title} has ended.`);
        }
        return;
      case 'pong':
        return;
      case 'room':
        if (message.streamId === this.streamId) this.showRoom(message.viewers, message.giftCoins);
        return;
      case 'giftSummary':
        this.summarize(message);
        return;
    }
  }

  /** The broadcaster's `room` message: the counters as they are now, pushed; no read needed. */
  private showRoom(viewers: number, giftCoins: number): void {
    this.roomMessages += 1;
    this.showCounters(viewers, giftCoins);
  }

  private showCounters(viewers: number | undefined, giftCoins: number | undefined): void {
    const watching = byId('room-viewers');
    watching.textContent = viewers === undefined ? '' : `${count(viewers)} watching`;
    if (viewers !== undefined) watching.dataset.value = String(viewers);
    else delete watching.dataset.value;
    const coins = byId('room-gift-coins');
    coins.textContent = giftCoins === undefined ? '' : ` · ${amountOf(giftCoins, 'coin')} in gifts`;
    coins.dataset.value = String(giftCoins ?? 0);
  }

  /**
   * A window too busy for one frame: its tail comes as one summary. In order, it advances the
   * room past its seqs; after a gap, catch-up reads the missing gifts singly instead.
   */
  private summarize(summary: Extract<ServerMessage, { type: 'giftSummary' }>): void {
    if (summary.streamId !== this.streamId || summary.toSeq <= this.lastSeq) return;
    if (summary.fromSeq > this.lastSeq + 1) {
      this.catchUp();
      return;
    }
    this.lastSeq = summary.toSeq;
    const total = summary.gifts.reduce((sum, gift) => sum + gift.coins, 0);
    const feed = byId('gift-feed');
    feed.prepend(
      element(
        'li',
        { 'data-testid': 'gift-feed-summary', 'data-seq': String(summary.toSeq) },
        element(
          'span',
          { class: 'gift-images' },
          ...summary.gifts.map((gift) => giftImage(gift.giftId, nameOf(gift.giftId))),
        ),
        element(
          'span',
          {},
          `${amountOf(summary.toSeq - summary.fromSeq + 1, 'more gift')} from ${amountOf(summary.senders, 'viewer')}`,
        ),
        element('span', { class: 'amount' }, `🪙 ${count(total)}`),
      ),
    );
    while (feed.children.length > FEED_MAX_ITEMS) feed.lastElementChild?.remove();
    this.scheduleLeaderboard();
    this.drainAhead();
  }

  /** Applies events once each and in seq order; a jump buffers the event and fetches the missing ones. */
  private deliver(event: GiftEvent, source: 'live' | 'catch-up'): void {
    if (event.streamId !== this.streamId || event.seq <= this.lastSeq) return;
    if (event.seq > this.lastSeq + 1) {
      this.ahead.set(event.seq, event);
      if (source === 'live') this.seenLive.add(event.seq);
      this.catchUp();
      return;
    }
    this.apply(event, source);
    this.drainAhead();
  }

  private drainAhead(): void {
    for (let next = this.ahead.get(this.lastSeq + 1); next; next = this.ahead.get(this.lastSeq + 1)) {
      this.ahead.delete(next.seq);
      this.apply(next, 'catch-up');
    }
    for (const seq of this.ahead.keys()) if (seq <= this.lastSeq) this.ahead.delete(seq);
    for (const seq of this.seenLive) if (seq <= this.lastSeq) this.seenLive.delete(seq);
  }

  private catchUp(): void {
    if (this.catchingUp) {
      this.catchUpAgain = true;
      return;
    }
    this.catchingUp = true;
    void (async () => {
      try {
        do {
          this.catchUpAgain = false;
          await this.readEvents();
        } while (this.catchUpAgain && !this.left);
      } catch (error) {
        if (!this.left && error instanceof ApiError && error.code !== 'NETWORK') showError(error);
      } finally {
        this.catchingUp = false;
        this.afterCatchUp();
      }
    })();
  }

  private async readEvents(): Promise<void> {
    for (let page = 0; page < MAX_CATCH_UP_PAGES && !this.left; page += 1) {
      const after = this.lastSeq;
      const result = await api(
        'GET',
        `/v1/streams/${encodeURIComponent(this.streamId)}/events?after=${after}&limit=${CATCH_UP_PAGE_SIZE}`,
        eventsSchema,
      );
      for (const item of result.items) this.deliver({ ...item, type: 'gift', streamId: this.streamId }, 'catch-up');
      // A page may be short and still have more behind it; an empty page, or one that did not
      // move us forward (a hole the server cannot fill yet), ends this round.
      if (result.items.length === 0 || this.lastSeq === after) return;
    }
  }

  private afterCatchUp(): void {
    if (this.left || this.ahead.size === 0) {
      this.gapAttempts = 0;
      return;
    }
    this.gapAttempts += 1;
    if (this.gapAttempts < GAP_FETCH_ATTEMPTS) {
      setTimeout(() => !this.left && this.catchUp(), GAP_RETRY_DELAY_MS);
      return;
    }
    // The missing events cannot be read back: show what we have rather than stall the room.
    this.gapAttempts = 0;
    const first = Math.min(...this.ahead.keys());
    this.lastSeq = first - 1;
    this.drainAhead();
  }

  private apply(event: GiftEvent, source: 'live' | 'catch-up'): void {
    this.lastSeq = event.seq;
    const name = nameOf(event.giftId);
    const from = event.fromUserId === session?.userId ? 'You' : event.fromUserId;
    const feed = byId('gift-feed');
    feed.prepend(
      element(
        'li',
        { 'data-testid': 'gift-feed-item', 'data-seq': String(event.seq), 'data-gift-id': event.giftId },
        giftImage(event.giftId, name),
        element('span', {}, `${from} sent ${event.quantity} × ${name}`),
        element('span', { class: 'amount' }, `🪙 ${count(event.coins)}`),
        element('time', { datetime: event.at }, timeOf(event.at)),
      ),
    );
    while (feed.children.length > FEED_MAX_ITEMS) feed.lastElementChild?.remove();
    // Only what arrives while watching flies across the stage; what catch-up reads back (before
    // joining, or while the connection was down) is history: the feed lists it, quietly.
    if (source === 'live' || this.seenLive.delete(event.seq)) this.animate(event);
    this.scheduleLeaderboard();
    // The creator's diamonds come with the gift's transaction: a wallet push says so; the re-fetch covers a missed push.
    if (this.asCreator) scheduleWalletRefresh();
  }

  private animate(event: GiftEvent): void {
    if (this.animations >= MAX_CONCURRENT_ANIMATIONS) return;
    const layer = byId('animation-layer');
    const bubble = element(
      'div',
      { class: 'flying', 'data-testid': 'gift-animation' },
      giftImage(event.giftId, nameOf(event.giftId)),
      element('span', { class: 'label' }, `×${event.quantity}`),
    );
    bubble.style.left = `${10 + Math.round(Math.random() * 70)}%`;
    layer.append(bubble);
    this.animations += 1;
    setTimeout(() => {
      bubble.remove();
      this.animations -= 1;
    }, ANIMATION_DURATION_MS);
  }

  /** At most one leaderboard read per LEADERBOARD_REFRESH_MS while gifts arrive, and one after the last. */
  private scheduleLeaderboard(): void {
    this.statsTimers.soon ??= setTimeout(() => {
      this.statsTimers.soon = undefined;
      this.refreshLeaderboard();
    }, LEADERBOARD_REFRESH_MS);
    clearTimeout(this.statsTimers.trailing);
    this.statsTimers.trailing = setTimeout(() => this.refreshLeaderboard(), LEADERBOARD_TRAILING_MS);
  }

  /** On entering the room: the counters and the leaderboard once; then `room` messages keep the counters. */
  private refreshStats(): void {
    if (this.left) return;
    this.refreshLeaderboard();
    // The profile once on joining (API.md): the stream list's copy may be a few seconds old.
    api('GET', `/v1/creators/${encodeURIComponent(this.stream.creatorId)}`, profileSchema)
      .then((profile) => !this.left && renderProfile(profile, this.stream.creatorId))
      .catch(() => undefined);
  }

  /**
   * The counters read once per (re)connection, after the socket is open so that this viewer is
   * counted; between reads the broadcaster's `room` messages keep them, never a poll per gift.
   */
  private readCounters(): void {
    const messagesBefore = this.roomMessages;
    api('GET', `/v1/streams/${encodeURIComponent(this.streamId)}`, streamSchema)
      .then((stream) => {
        if (this.left) return;
        // A `room` message that came meanwhile is newer than this read.
        if (this.roomMessages === messagesBefore) this.showCounters(stream.viewers, stream.giftCoins);
        if (stream.status !== 'live' && !this.ended) this.markEnded();
      })
      .catch(() => undefined);
  }

  private refreshLeaderboard(): void {
    if (this.left) return;
    const id = encodeURIComponent(this.streamId);
    api('GET', `/v1/streams/${id}/leaderboard?limit=${LEADERBOARD_SIZE}`, leaderboardSchema)
      .then(({ items }) => {
        if (this.left) return;
        byId('leaderboard-empty').hidden = items.length > 0;
        byId('leaderboard').replaceChildren(
          ...items.map((item) =>
            element(
              'li',
              { 'data-testid': 'leaderboard-item', 'data-user-id': item.userId, 'data-coins': String(item.coins) },
              element('span', {}, item.userId === session?.userId ? `${item.userId} (you)` : item.userId),
              element('span', { class: 'amount' }, `🪙 ${count(item.coins)}`),
            ),
          ),
        );
      })
      .catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------
// Payouts.
// ---------------------------------------------------------------------------------------------

let payoutAccountPolling = false;
let payoutsPollingUntil = 0;
/** A payout request keeps its key until it succeeds: a retry after a dropped answer pays once. */
let payoutRequest: { key: string; diamonds: number } | undefined;

function renderPayoutAccount(state: 'none' | 'onboarding' | 'enabled'): void {
  const node = byId('payout-account-status');
  node.dataset.state = state;
  node.textContent = {
    none: 'No payout account linked yet.',
    onboarding: 'Finish onboarding in the new tab. This page notices when payouts are enabled.',
    enabled: '✓ Payouts enabled: your payout account is linked.',
  }[state];
  byId('payout-link').hidden = state === 'enabled';
  if (state === 'enabled') byId('payout-onboarding-link').hidden = true;
}

async function refreshPayoutAccount(): Promise<boolean> {
  try {
    const account = await api('GET', '/v1/creator/payout-account', payoutAccountSchema);
    renderPayoutAccount(account.payoutsEnabled ? 'enabled' : 'onboarding');
    return account.payoutsEnabled;
  } catch (error) {
    if (error instanceof ApiError && error.code === 'NOT_FOUND') {
      renderPayoutAccount('none');
      return false;
    }
    throw error;
  }
}

async function linkPayoutAccount(): Promise<void> {
  // Opened now, inside the click, so that popup blockers allow it; it is pointed at the
  // onboarding link once the API has made one.
  const popup = window.open('', 'payout-onboarding');
  let account: z.infer<typeof payoutAccountSchema>;
  try {
    account = await api('POST', '/v1/creator/payout-account', payoutAccountSchema);
  } catch (error) {
    popup?.close();
    throw error;
  }
  if (account.payoutsEnabled || !account.onboardingUrl) {
    popup?.close();
    renderPayoutAccount(account.payoutsEnabled ? 'enabled' : 'onboarding');
    return;
  }
  const link = byId<HTMLAnchorElement>('payout-onboarding-link');
  link.href = account.onboardingUrl;
  link.hidden = false;
  if (popup) {
    popup.opener = null;
    popup.location.href = account.onboardingUrl;
  }
  renderPayoutAccount('onboarding');
  void pollPayoutAccount();
}

async function pollPayoutAccount(): Promise<void> {
  if (payoutAccountPolling) return;
  payoutAccountPolling = true;
  const epoch = sessionEpoch;
  const deadline = Date.now() + ONBOARDING_POLL_DEADLINE_MS;
  try {
    while (epoch === sessionEpoch && Date.now() < deadline) {
      if (await refreshPayoutAccount().catch(() => false)) {
        notify('Payouts enabled.');
        return;
      }
      await sleep(ONBOARDING_POLL_INTERVAL_MS);
    }
  } finally {
    payoutAccountPolling = false;
  }
}

function renderPayoutEstimate(): void {
  const input = byId<HTMLInputElement>('payout-diamonds');
  const diamonds = Number(input.value);
  const available = wallet?.diamonds ?? 0;
  input.placeholder = String(Math.max(MIN_PAYOUT_DIAMONDS_HINT, 0));
  const estimate =
    Number.isInteger(diamonds) && diamonds > 0 && diamonds % CENTS_PER_DIAMOND_DENOMINATOR === 0
      ? ` ${amountOf(diamonds, 'diamond')} pay ${formatMoney({ amount: diamonds / CENTS_PER_DIAMOND_DENOMINATOR, currency: 'USD' })}.`
      : '';
  byId('payout-estimate').textContent =
    `${amountOf(available, 'diamond')} available.${estimate} Payouts start at ${amountOf(MIN_PAYOUT_DIAMONDS_HINT, 'diamond')}; 1 diamond pays 0.5 US cents.`;
}

function payoutItem(payout: Payout): HTMLLIElement {
  const words: Record<string, string> = {
    requested: 'requested',
    processing: 'processing…',
    paid: 'paid ✓',
    failed: 'failed: diamonds returned',
  };
  return element(
    'li',
    { 'data-testid': 'payout-item', 'data-status': payout.status, 'data-payout-id': payout.payoutId },
    element('span', {}, `💎 ${count(payout.diamonds)}${payout.amount ? ` → ${formatMoney(payout.amount)}` : ''}`),
    element('span', { class: `status ${payout.status}` }, words[payout.status] ?? payout.status),
    element('time', payout.createdAt ? { datetime: payout.createdAt } : {}, timeOf(payout.createdAt)),
  );
}

/** The statuses last shown, so that a payout settling while we watch is announced once. */
const shownPayoutStatus = new Map<string, string>();

async function refreshPayouts(): Promise<boolean> {
  const { items } = await api('GET', '/v1/payouts', payoutsSchema);
  byId('payouts-list').replaceChildren(...items.map(payoutItem));
  for (const payout of items) {
    const before = shownPayoutStatus.get(payout.payoutId);
    if (before !== undefined && before !== payout.status && (payout.status === 'paid' || payout.status === 'failed')) {
      const amount = payout.amount ? ` (${formatMoney(payout.amount)})` : '';
      notify(
        payout.status === 'paid'
          ? `Payout of ${amountOf(payout.diamonds, 'diamond')} paid${amount}.`
          : `A payout failed; its ${amountOf(payout.diamonds, 'diamond')} are back in your balance.`,
      );
    }
    shownPayoutStatus.set(payout.payoutId, payout.status);
  }
  return items.some((payout) => payout.status === 'requested' || payout.status === 'processing');
}

async function requestPayout(): Promise<void> {
  const diamonds = Number(byId<HTMLInputElement>('payout-diamonds').value);
  if (!Number.isInteger(diamonds) || diamonds < 1)
    throw new ApiError('VALIDATION_FAILED', 'diamonds', 400, [
      { path: 'diamonds', message: 'a whole number of diamonds' },
    ]);
  if (payoutRequest?.diamonds !== diamonds) payoutRequest = { key: newKey('payout'), diamonds };
  const payout = await api('POST', '/v1/payouts', payoutSchema, {
    body: { diamonds },
    idempotencyKey: payoutRequest.key,
  });
  payoutRequest = undefined;
  notify(
    `Payout of ${amountOf(payout.diamonds, 'diamond')} requested${payout.amount ? ` (${formatMoney(payout.amount)})` : ''}.`,
  );
  await Promise.all([refreshWallet(), refreshPayouts()]);
  void pollPayouts();
}

async function pollPayouts(): Promise<void> {
  const polling = payoutsPollingUntil > Date.now();
  payoutsPollingUntil = Date.now() + PAYOUT_POLL_DEADLINE_MS;
  if (polling) return;
  const epoch = sessionEpoch;
  while (epoch === sessionEpoch && Date.now() < payoutsPollingUntil) {
    await sleep(PAYOUT_POLL_INTERVAL_MS);
    if (epoch !== sessionEpoch) break;
    const unsettled = await refreshPayouts().catch(() => true);
    if (!unsettled) {
      await refreshWallet().catch(() => undefined);
      break;
    }
  }
  payoutsPollingUntil = 0;
}

// ---------------------------------------------------------------------------------------------
// Wiring.
// ---------------------------------------------------------------------------------------------

function on<K extends keyof HTMLElementEventMap>(
  id: string,
  type: K,
  listener: (event: HTMLElementEventMap[K]) => void,
): void {
  byId(id).addEventListener(type, listener);
}

function submitButton(form: HTMLFormElement): HTMLButtonElement {
  const button = form.querySelector<HTMLButtonElement>('button[type="submit"]');
  if (!button) throw new Error(`form #${form.id} has no submit button`);
  return button;
}

function wire(): void {
  wireConsent(kit, applyConsent);
  on('signin-form', 'submit', (event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    void busy(submitButton(form), () => signIn(form));
  });
  on('signout', 'click', () => signOut());
  on('budget-form', 'submit', (event) => {
    event.preventDefault();
    void busy(submitButton(event.currentTarget as HTMLFormElement), () => saveBudget(false));
  });
  on('budget-clear', 'click', (event) => void busy(event.currentTarget as HTMLButtonElement, () => saveBudget(true)));
  on(
    'history-more',
    'click',
    (event) => void busy(event.currentTarget as HTMLButtonElement, () => refreshHistory(true)),
  );
  on('checkout-pay', 'click', (event) => void busy(event.currentTarget as HTMLButtonElement, pay));
  on('checkout-cancel', 'click', () => {
    checkout = undefined;
    byId<HTMLDialogElement>('checkout').close();
  });
  on('golive-form', 'submit', (event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    void busy(submitButton(form), () => goLive(form));
  });
  on('end-stream', 'click', (event) => void busy(event.currentTarget as HTMLButtonElement, endStream));
  on('streams-refresh', 'click', (event) => void busy(event.currentTarget as HTMLButtonElement, refreshStreams));
  on('room-leave', 'click', () => leaveRoom());
  on('payout-link', 'click', (event) => void busy(event.currentTarget as HTMLButtonElement, linkPayoutAccount));
  on('payout-form', 'submit', (event) => {
    event.preventDefault();
    void busy(submitButton(event.currentTarget as HTMLFormElement), requestPayout);
  });
  on('payout-diamonds', 'input', () => renderPayoutEstimate());
  on('gift-quantity', 'input', () => renderSpendable());
}

function restoreSession(): void {
  const stored = sessionStorage.getItem(SESSION_KEY);
  if (!stored) return;
  let parsed: unknown;
  try {
    parsed = JSON.parse(stored);
  } catch {
    parsed = undefined;
  }
  const result = sessionSchema.safeParse(parsed);
  if (!result.success) {
    sessionStorage.removeItem(SESSION_KEY);
    return;
  }
  session = result.data;
  enter().then(resumeRedirectPayment).catch(showError);
}

wire();
restoreSession();
mountDesk();
document.documentElement.dataset.ready = 'true';

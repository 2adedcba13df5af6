import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as z from 'zod';

/*
 * The stand-in's whole world, persisted as one JSON file. The Stripe objects are stored exactly
 * as the API returns them, so a response or an event payload is a copy of a stored object.
 * The schemas double as the loader's validation: a hand-edited or truncated file fails at start
 * with the file's name instead of surfacing as a strange response later.
 */

const metadataSchema = z.record(z.string(), z.string());
const unixSecondsSchema = z.number().int();

const listSchema = <T extends z.ZodType>(item: T) =>
  z.object({
    object: z.literal('list'),
    data: z.array(item),
    has_more: z.boolean(),
    total_count: z.number().int(),
    url: z.string(),
  });

export const paymentIntentStatusSchema = z.enum([
  'requires_payment_method',
  // A redirect method (PayPal) confirmed server-side: the customer is on the method's page.
  'requires_action',
  // Approved at the redirect, but the money is not settled yet ("succeeded late").
  'processing',
  'succeeded',
  'canceled',
]);

const paymentIntentSchema = z.object({
  id: z.string(),
  object: z.literal('payment_intent'),
  amount: z.number().int(),
  amount_capturable: z.number().int(),
  amount_received: z.number().int(),
  automatic_payment_methods: z.object({ enabled: z.boolean() }).nullable(),
  canceled_at: unixSecondsSchema.nullable(),
  cancellation_reason: z.string().nullable(),
  capture_method: z.string(),
  client_secret: z.string(),
  confirmation_method: z.string(),
  created: unixSecondsSchema,
  currency: z.string(),
  customer: z.string().nullable(),
  description: z.string().nullable(),
  last_payment_error: z
    .object({ type: z.string(), code: z.string(), decline_code: z.string().optional(), message: z.string() })
    .nullable(),
  latest_charge: z.string().nullable(),
  livemode: z.literal(false),
  metadata: metadataSchema,
  /** Absent in state files written before redirect methods existed. */
  next_action: z
    .object({
      type: z.literal('redirect_to_url'),
      redirect_to_url: z.object({ url: z.string(), return_url: z.string() }),
    })
    .nullable()
    .optional(),
  payment_method: z.string().nullable(),
  payment_method_types: z.array(z.string()),
  receipt_email: z.string().nullable(),
  status: paymentIntentStatusSchema,
  transfer_group: z.string().nullable(),
});
export type PaymentIntent = z.infer<typeof paymentIntentSchema>;

const refundSchema = z.object({
  id: z.string(),
  object: z.literal('refund'),
  amount: z.number().int(),
  charge: z.string(),
  created: unixSecondsSchema,
  currency: z.string(),
  metadata: metadataSchema,
  payment_intent: z.string(),
  reason: z.string().nullable(),
  status: z.literal('succeeded'),
});
export type Refund = z.infer<typeof refundSchema>;

const chargeSchema = z.object({
  id: z.string(),
  object: z.literal('charge'),
  amount: z.number().int(),
  amount_captured: z.number().int(),
  amount_refunded: z.number().int(),
  captured: z.boolean(),
  created: unixSecondsSchema,
  currency: z.string(),
  disputed: z.boolean(),
  livemode: z.literal(false),
  metadata: metadataSchema,
  paid: z.boolean(),
  payment_intent: z.string(),
  refunded: z.boolean(),
  refunds: listSchema(refundSchema),
  status: z.literal('succeeded'),
});
export type Charge = z.infer<typeof chargeSchema>;

const disputeSchema = z.object({
  id: z.string(),
  object: z.literal('dispute'),
  amount: z.number().int(),
  charge: z.string(),
  created: unixSecondsSchema,
  currency: z.string(),
  is_charge_refundable: z.boolean(),
  livemode: z.literal(false),
  metadata: metadataSchema,
  payment_intent: z.string(),
  reason: z.string(),
  status: z.string(),
});
export type Dispute = z.infer<typeof disputeSchema>;

const accountSchema = z.object({
  id: z.string(),
  object: z.literal('account'),
  business_type: z.string().nullable(),
  capabilities: z.object({ transfers: z.enum(['active', 'inactive', 'pending']) }),
  charges_enabled: z.boolean(),
  country: z.string(),
  created: unixSecondsSchema,
  default_currency: z.string(),
  details_submitted: z.boolean(),
  email: z.string().nullable(),
  metadata: metadataSchema,
  payouts_enabled: z.boolean(),
  requirements: z.object({ currently_due: z.array(z.string()), disabled_reason: z.string().nullable() }),
  type: z.string(),
});
export type Account = z.infer<typeof accountSchema>;

const transferSchema = z.object({
  id: z.string(),
  object: z.literal('transfer'),
  amount: z.number().int(),
  amount_reversed: z.number().int(),
  created: unixSecondsSchema,
  currency: z.string(),
  description: z.string().nullable(),
  destination: z.string(),
  destination_payment: z.string(),
  livemode: z.literal(false),
  metadata: metadataSchema,
  reversals: listSchema(z.never()),
  reversed: z.boolean(),
  source_transaction: z.string().nullable(),
  source_type: z.string(),
  transfer_group: z.string().nullable(),
});
export type Transfer = z.infer<typeof transferSchema>;

const eventSchema = z.object({
  id: z.string(),
  object: z.literal('event'),
  account: z.string().optional(),
  api_version: z.string(),
  created: unixSecondsSchema,
  data: z.object({
    object: z.record(z.string(), z.unknown()),
    previous_attributes: z.record(z.string(), z.unknown()).optional(),
  }),
  livemode: z.literal(false),
  pending_webhooks: z.number().int(),
  request: z.object({ id: z.string().nullable(), idempotency_key: z.string().nullable() }),
  type: z.string(),
});
export type StripeEvent = z.infer<typeof eventSchema>;

const idempotencyRecordSchema = z.object({
  method: z.string(),
  path: z.string(),
  paramsDigest: z.string(),
  status: z.number().int(),
  body: z.string(),
  createdAtMs: z.number().int(),
});
export type IdempotencyRecord = z.infer<typeof idempotencyRecordSchema>;

const pendingDeliverySchema = z.object({ attempts: z.number().int(), nextAttemptAtMs: z.number().int() });
export type PendingDelivery = z.infer<typeof pendingDeliverySchema>;

const STATE_VERSION = 1;

const stateSchema = z.object({
  version: z.literal(STATE_VERSION),
  paymentIntents: z.record(z.string(), paymentIntentSchema),
  charges: z.record(z.string(), chargeSchema),
  disputes: z.record(z.string(), disputeSchema),
  accounts: z.record(z.string(), accountSchema),
  /** The return_url of an account's latest account link, for the onboarding page's "back" link. */
  onboardingReturnUrls: z.record(z.string(), z.string()),
  /** Insertion order is creation order (JSON keeps string-key order). */
  transfers: z.record(z.string(), transferSchema),
  events: z.record(z.string(), eventSchema),
  /** `<trigger>:<object id>` -> event id, so a repeated succeed/dispute/onboarding re-sends the same event. */
  eventIdByTrigger: z.record(z.string(), z.string()),
  /** `<API key fingerprint>:<Idempotency-Key>` -> the stored answer. */
  idempotency: z.record(z.string(), idempotencyRecordSchema),
  /** Event id -> delivery not yet acknowledged by the webhook receiver. */
  deliveries: z.record(z.string(), pendingDeliverySchema),
});
export type State = z.infer<typeof stateSchema>;

function emptyState(): State {
  return {
    version: STATE_VERSION,
    paymentIntents: {},
    charges: {},
    disputes: {},
    accounts: {},
    onboardingReturnUrls: {},
    transfers: {},
    events: {},
    eventIdByTrigger: {},
    idempotency: {},
    deliveries: {},
  };
}

const ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const ID_RANDOM_CHARS = 24;
// Largest multiple of the alphabet size below 256: bytes above it are dropped so every character is equally likely.
const UNBIASED_BYTE_LIMIT = 256 - (256 % ID_ALPHABET.length);

export function randomAlphanumeric(length: number): string {
  let result = '';
  while (result.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < UNBIASED_BYTE_LIMIT && result.length < length) result += ID_ALPHABET[byte % ID_ALPHABET.length];
    }
  }
  return result;
}

/** Stripe-looking ids (`pi_3Q...`): the prefix tells the app which object it holds. */
export function newId(prefix: string): string {
  return `${prefix}_${randomAlphanumeric(ID_RANDOM_CHARS)}`;
}

export function unixSeconds(ms: number = Date.now()): number {
  return Math.floor(ms / 1000);
}

export class StateFileCorruptError extends Error {
  constructor(filePath: string, cause: unknown) {
    super(`The payments stand-in state file ${filePath} is not valid; move it away to start empty`, { cause });
    this.name = 'StateFileCorruptError';
  }
}

const STATE_FILE_NAME = 'payments-standin.json';

/**
 * Holds the state in memory and writes all of it after each mutation. Writes are group-committed:
 * every caller of `commit()` waits for a write that started after its call, and callers that arrive
 * while a write is running share the next one, so a burst of requests costs a few writes, not one each.
 * The write is a temp file plus rename, so a SIGKILL leaves either the old or the new file, never half
 * of one. No fsync: the brief is surviving a killed process, whose written pages the kernel keeps.
 */
export class StateStore {
  private writeChain: Promise<void> = Promise.resolve();
  private nextWrite: Promise<void> | null = null;
  private closed = false;

  private constructor(
    readonly state: State,
    private readonly filePath: string,
  ) {}

  static async open(dataDir: string): Promise<StateStore> {
    await mkdir(dataDir, { recursive: true });
    const filePath = join(dataDir, STATE_FILE_NAME);
    let text: string | null = null;
    try {
      text = await readFile(filePath, 'utf8');
    } catch (error) {
      // Checked by shape, not `instanceof Error`: errors from node's fs come from another realm under jest.
      const missing = typeof error === 'object' && error !== null && 'code' in error && error.code === 'ENOENT';
      if (!missing) throw error;
    }
    if (text === null) return new StateStore(emptyState(), filePath);
    try {
      return new StateStore(stateSchema.parse(JSON.parse(text)), filePath);
    } catch (error) {
      throw new StateFileCorruptError(filePath, error);
    }
  }

  commit(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.nextWrite !== null) return this.nextWrite;
    const write = this.writeChain.then(() => {
      this.nextWrite = null;
      return this.closed ? undefined : this.writeNow();
    });
    this.nextWrite = write;
    this.writeChain = write.catch(() => undefined);
    return write;
  }

  /** After close nothing is written: a successor on the same directory must not be overwritten by us. */
  async close(): Promise<void> {
    this.closed = true;
    await this.writeChain;
  }

  private async writeNow(): Promise<void> {
    const tempPath = `${this.filePath}.tmp`;
    await writeFile(tempPath, JSON.stringify(this.state));
    await rename(tempPath, this.filePath);
  }
}

/**
 * Reads an id from a record of objects as a map: only own entries, so an id such as
 * `__proto__` or `toString` from a request is just an unknown id, never the prototype.
 */
export function ownEntry<T>(record: Record<string, T>, id: string): T | undefined {
  return Object.hasOwn(record, id) ? record[id] : undefined;
}

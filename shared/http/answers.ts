import * as z from 'zod';
import { ENTRY_TYPES } from '../domain/ledger';
import { CURRENCIES } from '../domain/money';
import { offerRecord } from '../domain/offers';
import { PAYMENT_METHODS } from '../domain/payment-methods';

/**
 * The success answers of the HTTP API, written once. Each handler publishes the schema of its
 * answer next to its request schemas (httpRoute's `response`), and its answer is type-checked
 * against it, so the OpenAPI document's response schemas cannot drift from what handlers return.
 * Handlers never parse their own answers (no cost per request); the local gateway checks them in
 * tests. Schemas are plain objects: a field the contract does not name is stripped, never refused.
 */

const count = z.number().int();
const timestamp = z.string().describe('ISO 8601, UTC');
const cursor = z.string().nullable().describe('Pass as `cursor` for the next page; null on the last page.');

export const moneyAnswer = z.object({
  amount: z.number().int().describe('minor units (cents)'),
  currency: z.enum(CURRENCIES),
});

export const healthAnswer = z.object({ status: z.string() });

export const giftCatalogAnswer = z.object({
  gifts: z.array(z.object({ id: z.string(), name: z.string(), coins: count })).readonly(),
});

export const packageCatalogAnswer = z.object({
  country: z.string(),
  currency: z.enum(CURRENCIES),
  packages: z.array(
    z.object({
      id: z.string(),
      coins: count,
      price: moneyAnswer,
      offer: z
        .object({
          offerId: z.string(),
          kind: z.enum(['discount', 'bonus']),
          price: moneyAnswer,
          bonusCoins: count,
          endsAt: timestamp,
          firstRechargeOnly: z.boolean(),
        })
        .optional(),
    }),
  ),
  platformFee: moneyAnswer.optional(),
  methods: z.array(
    z.object({ method: z.enum(PAYMENT_METHODS), confirmation: z.enum(['card', 'redirect']), fee: moneyAnswer }),
  ),
});

export const walletAnswer = z.object({
  userId: z.string(),
  coins: count,
  owedCoins: count,
  diamonds: count,
  pendingDiamonds: count,
  locked: z.boolean(),
  budget: z.object({ monthlyLimit: moneyAnswer.nullable(), spentThisMonth: moneyAnswer }),
});

/** A ledger entry: every amount is a signed delta of the wallet field of the same name. */
export const transactionAnswer = z.object({
  id: z.string(),
  type: z.enum(ENTRY_TYPES),
  coins: count,
  owedCoins: count,
  diamonds: count,
  pendingDiamonds: count,
  createdAt: timestamp,
  ref: z.record(z.string(), z.union([z.string(), z.number()])),
});

export const transactionsPageAnswer = z.object({ items: z.array(transactionAnswer), nextCursor: cursor });

const breakdownAnswer = z.object({
  coins: moneyAnswer,
  discount: moneyAnswer,
  platformFee: moneyAnswer,
  methodFee: moneyAnswer,
  total: moneyAnswer,
});

/** What a recharge repeats on creation and on read: the itemized terms it was created under. */
const rechargeTerms = {
  rechargeId: z.string(),
  coins: count,
  price: moneyAnswer.describe('the all-in amount charged'),
  method: z.enum(PAYMENT_METHODS).optional(),
  bonusCoins: count.optional(),
  offerId: z.string().optional(),
  breakdown: breakdownAnswer.optional(),
};

export const rechargeCreatedAnswer = z.object({
  ...rechargeTerms,
  status: z.literal('pending'),
  payment: z.object({
    provider: z.literal('stripe'),
    paymentIntentId: z.string(),
    clientSecret: z.string(),
    confirmation: z.enum(['card', 'redirect']).optional(),
    redirectUrl: z.string().optional(),
  }),
});

export const rechargeAnswer = z.object({
  ...rechargeTerms,
  status: z.enum(['pending', 'succeeded', 'failed', 'disputed']),
  createdAt: timestamp,
});

export const webhookAnswer = z.object({ received: z.boolean() });

export const streamCreatedAnswer = z.object({
  streamId: z.string(),
  creatorId: z.string(),
  title: z.string(),
  status: z.enum(['live', 'ended']),
  startedAt: timestamp,
});

export const streamAnswer = streamCreatedAnswer.extend({
  giftCoins: count,
  viewers: count,
  endedAt: timestamp.optional(),
});

export const creatorProfileAnswer = z.object({
  creatorId: z.string(),
  displayName: z.string(),
  streamingSince: timestamp,
  streams: count,
  verified: z.boolean(),
  giftCoinsReceived: count,
});

export const streamsPageAnswer = z.object({
  items: z.array(streamCreatedAnswer.extend({ giftCoins: count, creator: creatorProfileAnswer.nullable() })),
  nextCursor: cursor,
});

export const leaderboardAnswer = z.object({ items: z.array(z.object({ userId: z.string(), coins: count })) });

export const giftEventsAnswer = z.object({
  items: z.array(
    z.object({
      type: z.literal('gift'),
      streamId: z.string(),
      seq: count,
      giftTxId: z.string(),
      fromUserId: z.string(),
      giftId: z.string(),
      quantity: count,
      coins: count,
      at: timestamp,
    }),
  ),
  nextSeq: count,
});

export const giftSentAnswer = z.object({
  giftTxId: z.string(),
  coinsSpent: count,
  wallet: z.object({ coins: count }),
});

const reportOutcomeAnswer = z.object({
  lock: z.enum(['kept', 'lifted']),
  refundedRechargeIds: z.array(z.string()),
});

export const notificationsAnswer = z.object({
  items: z.array(
    z.discriminatedUnion('type', [
      z.object({
        id: z.string(),
        type: z.literal('gift_received'),
        streamId: z.string(),
        fromUserId: z.string(),
        giftId: z.string(),
        quantity: count,
        diamonds: count,
        createdAt: timestamp,
      }),
      z.object({
        id: z.string(),
        type: z.literal('report_resolved'),
        reportId: z.string(),
        outcome: reportOutcomeAnswer,
        createdAt: timestamp,
      }),
    ]),
  ),
  nextCursor: cursor,
});

export const payoutAccountAnswer = z.object({ accountId: z.string(), payoutsEnabled: z.boolean() });
export const payoutAccountCreatedAnswer = payoutAccountAnswer.extend({ onboardingUrl: z.string() });

export const payoutRequestedAnswer = z.object({
  payoutId: z.string(),
  status: z.literal('requested'),
  diamonds: count,
  amount: moneyAnswer,
});

export const payoutAnswer = payoutRequestedAnswer.extend({
  status: z.enum(['requested', 'processing', 'paid', 'failed']),
  createdAt: timestamp,
  updatedAt: timestamp,
  failureCode: z.string().optional(),
});

export const payoutsPageAnswer = z.object({ items: z.array(payoutAnswer), nextCursor: cursor });

export const inviteAnswer = z.object({
  inviteId: z.string(),
  teenId: z.string(),
  guardianId: z.string(),
  status: z.enum(['pending', 'approved', 'declined']),
  createdAt: timestamp,
  decidedAt: timestamp.nullable(),
});

export const invitesAnswer = z.object({ items: z.array(inviteAnswer) });

export const consentAnswer = z.object({
  consented: z.boolean(),
  appConsent: z.enum(['granted', 'revoked', 'none']),
  guardianId: z.string().nullable(),
  decidedAt: timestamp.nullable(),
});

export const consentRevokedAnswer = z.object({
  teenId: z.string(),
  appConsent: z.literal('revoked'),
  decidedAt: timestamp,
});

export const wardBudgetAnswer = z.object({
  teenId: z.string(),
  monthlyLimit: moneyAnswer,
  setBy: z.literal('guardian'),
});

export const reportCreatedAnswer = z.object({ reportId: z.string() });

export const reportAnswer = z.object({
  reportId: z.string(),
  transactionId: z.string(),
  status: z.enum(['open', 'resolved']),
  createdAt: timestamp,
  outcome: reportOutcomeAnswer.nullable(),
  resolvedAt: timestamp.nullable(),
});

export const auditPageAnswer = z.object({
  items: z.array(
    z.object({
      auditId: z.string(),
      operatorId: z.string(),
      action: z.string(),
      target: z.string(),
      at: timestamp,
      details: z.record(z.string(), z.unknown()),
    }),
  ),
  nextCursor: cursor,
});

/** The offer as stored is the offer as answered. */
export const offerAnswer = offerRecord;
export const offersAnswer = z.object({ items: z.array(offerAnswer) });

const caseResolutionAnswer = z.object({
  operatorId: z.string(),
  resolvedAt: timestamp,
  lock: z.enum(['keep', 'lift']),
  note: z.string(),
  reason: z.string(),
  refunds: z.array(z.object({ rechargeId: z.string(), paymentIntentId: z.string() })),
});

export const caseAnswer = z.object({
  caseId: z.string(),
  kind: z.enum(['report', 'wallet_locked']),
  userId: z.string(),
  status: z.enum(['open', 'resolved']),
  createdAt: timestamp,
  reportId: z.string().optional(),
  transactionId: z.string().optional(),
  transactionKey: z.object({ pk: z.string(), sk: z.string() }).optional(),
  reportReason: z.string().optional(),
  rechargeId: z.string().optional(),
  source: z.record(z.string(), z.string()).optional(),
  resolution: caseResolutionAnswer.optional(),
});

export const casesPageAnswer = z.object({ items: z.array(caseAnswer), nextCursor: cursor });

export const caseDetailAnswer = z.object({
  case: caseAnswer,
  wallet: z.object({
    userId: z.string(),
    coins: count,
    owedCoins: count,
    locked: z.boolean(),
    lockReason: z.string().nullable(),
  }),
  transaction: transactionAnswer.nullable(),
  ledger: z.object({ before: z.array(transactionAnswer), after: z.array(transactionAnswer) }),
  recharges: z.array(
    z.object({
      rechargeId: z.string(),
      paymentIntentId: z.string(),
      packageId: z.string(),
      coins: count,
      bonusCoins: count,
      price: z.object({ amount: count, currency: z.string() }),
      status: z.enum(['pending', 'succeeded', 'failed', 'disputed']),
      refundedMinor: count,
      createdAt: timestamp,
      refundable: z.boolean(),
    }),
  ),
});

export const caseResolvedAnswer = z.object({
  caseId: z.string(),
  status: z.literal('resolved'),
  resolution: caseResolutionAnswer,
});

export const devTokenAnswer = z.object({ token: z.string() });
export const devPaymentAnswer = z.object({ eventId: z.string(), delivered: z.boolean() });

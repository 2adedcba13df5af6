/** What the API answers (API.md), parsed rather than trusted: the page's zod/mini schemas. */
import * as z from 'zod/mini';

const money = z.object({ amount: z.int(), currency: z.string() });
export type Money = z.infer<typeof money>;

export const walletSchema = z.object({
  userId: z.string(),
  coins: z.int(),
  owedCoins: z.int(),
  diamonds: z.int(),
  pendingDiamonds: z.int(),
  locked: z.boolean(),
  budget: z.object({ monthlyLimit: z.nullable(money), spentThisMonth: money }),
});
export type Wallet = z.infer<typeof walletSchema>;

export const transactionsSchema = z.object({
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
export type Transaction = z.infer<typeof transactionsSchema>['items'][number];

export const packagesSchema = z.object({
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
export type CoinPackage = z.infer<typeof packagesSchema>['packages'][number];

export const giftsSchema = z.object({ gifts: z.array(z.object({ id: z.string(), name: z.string(), coins: z.int() })) });
export type Gift = z.infer<typeof giftsSchema>['gifts'][number];

export const tokenSchema = z.object({ token: z.string() });
export const rechargeCreatedSchema = z.object({
  rechargeId: z.string(),
  status: z.string(),
  coins: z.int(),
  price: money,
  payment: z.object({ paymentIntentId: z.string(), redirectUrl: z.optional(z.string()) }),
  bonusCoins: z.optional(z.int()),
});
export const rechargeSchema = z.object({ rechargeId: z.string(), status: z.string(), coins: z.int() });

/** API.md, "Creator profiles": what a viewer checks before sending a gift. */
export const profileSchema = z.object({
  creatorId: z.string(),
  displayName: z.string(),
  streamingSince: z.string(),
  streams: z.int(),
  verified: z.boolean(),
  giftCoinsReceived: z.int(),
});
export type Profile = z.infer<typeof profileSchema>;
export const streamSchema = z.object({
  streamId: z.string(),
  creatorId: z.string(),
  title: z.string(),
  status: z.string(),
  startedAt: z.optional(z.string()),
  giftCoins: z.optional(z.int()),
  viewers: z.optional(z.int()),
  creator: z.optional(z.nullable(profileSchema)),
});
export type Stream = z.infer<typeof streamSchema>;
export const streamsSchema = z.object({ items: z.array(streamSchema), nextCursor: z.optional(z.nullable(z.string())) });
export const leaderboardSchema = z.object({ items: z.array(z.object({ userId: z.string(), coins: z.int() })) });

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
export type GiftEvent = z.infer<typeof giftEventSchema>;
/** Catch-up items are the same gift events; type and streamId are filled in when absent. */
export const eventsSchema = z.object({
  items: z.array(
    z.object({ type: z.optional(z.literal('gift')), streamId: z.optional(z.string()), ...giftEventFields }),
  ),
  nextSeq: z.optional(z.nullable(z.int())),
});

export const payoutAccountSchema = z.object({
  accountId: z.string(),
  onboardingUrl: z.optional(z.string()),
  payoutsEnabled: z.boolean(),
});
export const payoutSchema = z.object({
  payoutId: z.string(),
  status: z.string(),
  diamonds: z.int(),
  amount: z.optional(money),
  createdAt: z.optional(z.string()),
});
export type Payout = z.infer<typeof payoutSchema>;
export const payoutsSchema = z.object({ items: z.array(payoutSchema), nextCursor: z.optional(z.nullable(z.string())) });

export const errorBodySchema = z.object({
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
export const serverMessageSchema = z.discriminatedUnion('type', [
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
export type ServerMessage = z.infer<typeof serverMessageSchema>;
export const batchSchema = z.object({ type: z.literal('batch'), events: z.array(z.unknown()) });

export const sessionSchema = z.object({
  token: z.string(),
  userId: z.string(),
  role: z.enum(['viewer', 'creator']),
  country: z.string(),
});
export type Session = z.infer<typeof sessionSchema>;

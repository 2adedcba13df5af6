import * as z from 'zod';
import { ledgerDeps } from '../../shared/adapters/clients';
import { MAX_DISCOUNT_PERCENT, OFFER_KINDS } from '../../shared/domain/offers';
import { offerAnswer } from '../../shared/http/answers';
import { httpRoute } from '../../shared/http/route';
import { createOffer } from '../../shared/usecases/offers';
import { declaredHttpRoute } from '../../infra/routes';

/** POST /v1/operator/offers (operators): a time-boxed discount or bonus on one package. */
const isoTime = z.iso.datetime({ offset: false }).transform((value) => new Date(value).toISOString());
const body = z.strictObject({
  packageId: z.string().min(1).max(64),
  kind: z.enum(OFFER_KINDS),
  discountPercent: z.number().int().min(1).max(MAX_DISCOUNT_PERCENT).optional(),
  bonusCoins: z.number().int().min(1).max(1_000_000).optional(),
  countries: z
    .array(z.string().regex(/^[A-Za-z]{2}$/, 'an ISO 3166-1 alpha-2 code'))
    .min(1)
    .max(50)
    .optional(),
  firstRechargeOnly: z.boolean().optional(),
  startsAt: isoTime.optional(),
  endsAt: isoTime,
});

export const handler = httpRoute(declaredHttpRoute('OperatorOffersCreate'), {
  body,
  response: { status: 201, schema: offerAnswer },
  handle: async ({ caller, body: input }) => ({
    status: 201,
    body: await createOffer(ledgerDeps(), caller, input),
  }),
});

import * as z from 'zod';
import { ledgerStore } from '../../shared/adapters/clients';
import { systemClock } from '../../shared/adapters/clock';
import { newId } from '../../shared/adapters/ids';
import { giftEventPublisher } from '../../shared/adapters/gift-events';
import { ledgerConfig } from '../../shared/config';
import { giftSentAnswer } from '../../shared/http/answers';
import { httpRoute } from '../../shared/http/route';
import { opaqueId } from '../../shared/http/schemas';
import {
  BalanceRaces,
  MAX_GIFT_QUANTITY,
  MIN_GIFT_QUANTITY,
  SenderWallets,
  sendGift,
  StreamCache,
} from '../../shared/usecases/gifts';
import { metrics } from '../../shared/observability/metrics';
import { declaredHttpRoute } from '../../infra/routes';

/** Live streams this warm instance read recently: most gifts then read no stream item. */
const streamCache = new StreamCache();
const balanceRaces = new BalanceRaces();
/** Senders' balances as this instance last wrote them: a run of gifts makes one round trip each. */
const senderWallets = new SenderWallets();

/** POST /v1/streams/{streamId}/gifts { giftId, quantity } (Idempotency-Key): coins become the creator's diamonds in one step. */
export const handler = httpRoute(declaredHttpRoute('GiftsSend'), {
  path: z.object({ streamId: opaqueId }),
  body: z.object({
    giftId: z.string().min(1).max(64),
    quantity: z.number().int().min(MIN_GIFT_QUANTITY).max(MAX_GIFT_QUANTITY),
  }),
  response: { status: 201, schema: giftSentAnswer },
  handle: async ({ caller, path, body, idempotency }) => {
    const { replayed, ...answer } = await sendGift(
      {
        store: ledgerStore(),
        publisher: giftEventPublisher(),
        now: () => systemClock.now(),
        newId,
        economy: ledgerConfig().economy,
        streamCache,
        balanceRaces,
        senderWallets,
      },
      caller,
      { streamId: path.streamId, giftId: body.giftId, quantity: body.quantity, idempotencyKey: idempotency.key },
    );
    if (!replayed) metrics.count('GiftsSent');
    return { status: 201, body: answer };
  },
});

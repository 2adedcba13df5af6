import * as z from 'zod';
import { ledgerStore } from '../../shared/adapters/clients';
import { systemClock } from '../../shared/adapters/clock';
import { newId } from '../../shared/adapters/ids';
import { connectionStreams } from '../../shared/adapters/dynamo/connection-streams';
import { giftEventPublisher } from '../../shared/adapters/gift-events';
import { ledgerConfig } from '../../shared/config';
import { ValidationError } from '../../shared/domain/errors';
import { IDEMPOTENCY_KEY_PATTERN } from '../../shared/http/route';
import {
  BalanceRaces,
  MAX_GIFT_QUANTITY,
  MIN_GIFT_QUANTITY,
  SenderWallets,
  sendGift,
  StreamCache,
} from '../../shared/usecases/gifts';
import { authorizerContext, wsRoute } from '../../shared/ws/route';
import { metrics } from '../../shared/observability/metrics';

/** Live streams this warm instance read recently: most gifts then read no stream item. */
const streamCache = new StreamCache();
const balanceRaces = new BalanceRaces();
/** Senders' balances as this instance last wrote them: a run of gifts makes one round trip each. */
const senderWallets = new SenderWallets();

/**
 * `sendGift { requestId, giftId, quantity }`: the same use case as the HTTP route, to the stream
 * the connection is on (its record, which `join` moves; else the stream it connected to).
 * The requestId is the idempotency key.
 */
export const handler = wsRoute({
  // Costs database reads and writes: a write against the caller's limit.
  requestClass: 'write',
  body: z.object({
    action: z.literal('sendGift'),
    requestId: z.string().regex(IDEMPOTENCY_KEY_PATTERN, '1-255 printable ASCII characters'),
    giftId: z.string().min(1).max(64),
    quantity: z.number().int().min(MIN_GIFT_QUANTITY).max(MAX_GIFT_QUANTITY),
  }),
  handle: async ({ body, caller, connectionId, event }) => {
    const streamId =
      (await connectionStreams().streamOf(connectionId)) ??
      authorizerContext.parse(event.requestContext.authorizer ?? {}).streamId;
    if (streamId === undefined) {
      throw new ValidationError('This connection watches no stream: connect with ?streamId= or send join first.', {
        details: [{ path: 'streamId', message: 'no stream joined' }],
      });
    }
    const answer = await sendGift(
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
      { streamId, giftId: body.giftId, quantity: body.quantity, idempotencyKey: body.requestId },
    );
    if (!answer.replayed) metrics.count('GiftsSent');
    return { type: 'giftAck', requestId: body.requestId, giftTxId: answer.giftTxId, wallet: answer.wallet };
  },
});

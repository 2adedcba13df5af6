import { closeBalancedBooks } from '../../support/ledger';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { DynamoLedgerStore } from '../../../shared/adapters/dynamo/ledger-store';
import { createRecharge, readRecharge } from '../../../shared/usecases/recharge';
import { handleStripeEvent } from '../../../shared/usecases/stripe-webhook';
import {
  adult,
  entriesOf,
  entrySums,
  events,
  FakePayments,
  freshLedger,
  spendCoins,
  webhookDeps,
} from './recharge-fixtures';

/** `charge.dispute.closed` with status `won`: what that dispute took comes back, owed coins first, once. */

let store: DynamoLedgerStore;
let client: DynamoDBClient;
const payments = new FakePayments();
let sequence = 0;

beforeAll(async () => {
  ({ store, client } = await freshLedger());
});
afterAll(() => closeBalancedBooks(client, store.tableName));

const hook = () => webhookDeps(store, () => new Date(), payments);

/** A user credited with coins_500 (500 coins for 599 cents). */
async function creditedUser(): Promise<{ userId: string; paymentIntentId: string; rechargeId: string }> {
  sequence += 1;
  const userId = `disputer-${sequence}-${Date.now()}`;
  const answer = await createRecharge(
    { store, payments, now: () => new Date() },
    adult(userId),
    { packageId: 'coins_500' },
    { key: `d-${sequence}`, fingerprint: 'f' },
  );
  const { paymentIntentId } = answer.body.payment;
  expect(await handleStripeEvent(hook(), events.succeeded(paymentIntentId))).toBe('credited');
  return { userId, paymentIntentId, rechargeId: answer.body.rechargeId };
}

async function balances(userId: string) {
  const wallet = await store.readWallet(userId, { consistent: true });
  expect(await entrySums(store, userId)).toEqual({ coins: wallet.coins, owedCoins: wallet.owedCoins });
  return { coins: wallet.coins, owedCoins: wallet.owedCoins, locked: wallet.locked };
}

it('gives back what the dispute took, debt first, exactly once; the wallet stays locked', async () => {
  const { userId, paymentIntentId, rechargeId } = await creditedUser();
  expect(await spendCoins(store, userId, 400)).toBe(true);
  expect(await handleStripeEvent(hook(), events.dispute(paymentIntentId, 599))).toBe('clawed_back');
  expect(await balances(userId)).toEqual({ coins: 0, owedCoins: 400, locked: true });

  const won = events.disputeClosed(paymentIntentId, 599, 'won');
  const outcomes = await Promise.all([
    handleStripeEvent(hook(), won),
    handleStripeEvent(hook(), won),
    handleStripeEvent(hook(), events.disputeClosed(paymentIntentId, 599, 'won')),
  ]);
  expect(outcomes.filter((outcome) => outcome === 'given_back')).toHaveLength(1);
  // 500 taken: 100 from the balance, 400 owed. Back: the 400 of debt forgiven first, then 100 coins.
  expect(await balances(userId)).toEqual({ coins: 100, owedCoins: 0, locked: true });
  const givenBack = (await entriesOf(store, userId)).filter((entry) => entry.entryType === 'dispute_won');
  expect(givenBack).toHaveLength(1);
  expect(givenBack[0]).toMatchObject({ coins: 100, owedCoins: -400 });
  expect((await readRecharge(store, rechargeId))?.clawedCoins).toBe(0);
});

it('gives back only the won dispute of two, in proportion to its amount', async () => {
  const { userId, paymentIntentId } = await creditedUser();
  expect(await handleStripeEvent(hook(), events.dispute(paymentIntentId, 200, 'dp_a'))).toBe('clawed_back');
  expect(await handleStripeEvent(hook(), events.dispute(paymentIntentId, 100, 'dp_b'))).toBe('clawed_back');
  // floor(500 * 300 / 599) = 250 taken in all.
  expect(await balances(userId)).toMatchObject({ coins: 250, owedCoins: 0 });
  expect(await handleStripeEvent(hook(), events.disputeClosed(paymentIntentId, 200, 'won', 'dp_a'))).toBe('given_back');
  // What still stands: floor(500 * 100 / 599) = 83 taken, so 167 come back.
  expect(await balances(userId)).toMatchObject({ coins: 417, owedCoins: 0 });
  expect(await handleStripeEvent(hook(), events.disputeClosed(paymentIntentId, 100, 'lost', 'dp_b'))).toBe('ignored');
  expect(await balances(userId)).toMatchObject({ coins: 417, owedCoins: 0 });
});

it('takes nothing for a dispute whose "won" arrives before its "created"', async () => {
  const { userId, paymentIntentId } = await creditedUser();
  expect(await handleStripeEvent(hook(), events.disputeClosed(paymentIntentId, 599, 'won'))).toBe('recorded');
  expect(await handleStripeEvent(hook(), events.dispute(paymentIntentId, 599))).toBe('duplicate');
  expect(await balances(userId)).toEqual({ coins: 500, owedCoins: 0, locked: false });
});

it('acknowledges an event from the other mode and changes nothing, so the right one still applies', async () => {
  const { userId, paymentIntentId } = await creditedUser();
  const live = { ...events.dispute(paymentIntentId, 599, 'dp_live', 'evt_live_1'), livemode: true };
  expect(await handleStripeEvent(hook(), live)).toBe('livemode_mismatch');
  expect(await balances(userId)).toEqual({ coins: 500, owedCoins: 0, locked: false });
  expect(await handleStripeEvent(hook(), { ...live, livemode: false })).toBe('clawed_back');
  expect(await balances(userId)).toEqual({ coins: 0, owedCoins: 0, locked: true });
});

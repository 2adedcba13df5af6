import { newId } from '../../../shared/adapters/ids';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { keys } from '../../../shared/adapters/dynamo/keys';
import type { DynamoLedgerStore } from '../../../shared/adapters/dynamo/ledger-store';
import type { RefundInput } from '../../../shared/adapters/payments';
import { ConflictError, NotFoundError, TransientDependencyError, ValidationError } from '../../../shared/domain/errors';
import type { Caller } from '../../../shared/domain/identity';
import { listAudit } from '../../../shared/usecases/audit';
import { completeDeskRefunds, deskRefundKey, getReportStatus, resolveCase } from '../../../shared/usecases/desk';
import { getCaseDetail, listOpenCases, readCase } from '../../../shared/usecases/desk-cases';
import { createRecharge, expirePendingRecharges, readRecharge } from '../../../shared/usecases/recharge';
import { listNotifications } from '../../../shared/usecases/streams';
import { handleStripeEvent } from '../../../shared/usecases/stripe-webhook';
import { reportTransaction } from '../../../shared/usecases/wallet-settings';
import { closeBalancedBooks } from '../../support/ledger';
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

/**
 * The support desk's money rules, against DynamoDB Local: a desk refund takes coins
 * back once, whether its `charge.refunded` lands before or after the desk applies it, and however
 * often either is repeated; its webhook never locks again a wallet the operator unlocked; a crash
 * between closing the case and calling Stripe is finished by the same request; bad input changes
 * nothing. The books must balance at the end (`npm run reconcile`'s check).
 */

let store: DynamoLedgerStore;
let client: DynamoDBClient;
let sequence = 0;
const operator: Caller = { ...adult('op-desk'), groups: ['operators'] };

beforeAll(async () => {
  ({ store, client } = await freshLedger());
});
afterAll(() => closeBalancedBooks(client, store.tableName));

/** Stripe's side of a desk refund: the refund is made once per idempotency key, and its event built. */
class DeskStripe extends FakePayments {
  /** Delivered inside refundPayment, before it answers: the webhook lands before the desk applies the refund. */
  webhookFirst = false;
  readonly refundEvents: ReturnType<typeof events.refunded>[] = [];
  override async refundPayment(input: RefundInput): Promise<'refunded' | 'already_refunded'> {
    const fresh = !this.refundedKeys.has(input.idempotencyKey);
    const outcome = await super.refundPayment(input);
    if (fresh) {
      const event = events.refunded(input.paymentIntentId, 599, 599);
      this.refundEvents.push(event);
      if (this.webhookFirst)
        expect(
          await handleStripeEvent(
            webhookDeps(store, () => new Date(), this),
            event,
          ),
        ).toBe('clawed_back');
    }
    return outcome;
  }
}

/** A user credited with coins_500 (500 coins for 599 cents) who spent `spent` of them, and reported the recharge. */
async function reportedUser(payments: FakePayments, spent: number) {
  sequence += 1;
  const userId = `desk-user-${sequence}-${Date.now()}`;
  const answer = await createRecharge(
    { store, payments, now: () => new Date() },
    adult(userId),
    { packageId: 'coins_500' },
    { key: `desk-${sequence}`, fingerprint: 'f' },
  );
  const { paymentIntentId } = answer.body.payment;
  const { rechargeId } = answer.body;
  expect(
    await handleStripeEvent(
      webhookDeps(store, () => new Date(), payments),
      events.succeeded(paymentIntentId),
    ),
  ).toBe('credited');
  if (spent > 0) expect(await spendCoins(store, userId, spent)).toBe(true);
  const rechargeEntry = (await entriesOf(store, userId)).find((item) => item.entryType === 'recharge');
  const { reportId } = await reportTransaction(
    { store, now: () => new Date(), newId },
    adult(userId),
    String(rechargeEntry?.entryId),
    'I did not buy this',
  );
  return { userId, paymentIntentId, rechargeId, caseId: reportId, reportId };
}

async function books(userId: string) {
  const wallet = await store.readWallet(userId, { consistent: true });
  // The wallet is always the sum of its entries.
  expect(await entrySums(store, userId)).toEqual({ coins: wallet.coins, owedCoins: wallet.owedCoins });
  const chargebacks = (await entriesOf(store, userId)).filter((item) => item.entryType === 'chargeback');
  return { coins: wallet.coins, owedCoins: wallet.owedCoins, locked: wallet.locked, chargebacks: chargebacks.length };
}

const refundAndLift = (rechargeId: string) => ({
  refunds: [{ rechargeId }],
  lock: 'lift' as const,
  note: 'card was stolen; refunded',
  reason: 'unauthorized purchase',
});

it('a desk refund takes the coins back once with its webhook after it, and the webhook does not lock again', async () => {
  const payments = new DeskStripe();
  const deps = { store, payments, now: () => new Date(), newId };
  const user = await reportedUser(payments, 400);
  expect(await books(user.userId)).toEqual({ coins: 100, owedCoins: 0, locked: true, chargebacks: 0 });

  const first = await resolveCase(deps, operator, user.caseId, refundAndLift(user.rechargeId), {
    key: 'k1',
    fingerprint: 'f1',
  });
  expect(first.status).toBe(200);
  // 100 coins in the balance are taken; the other 400 are owed. Unlocked, as the operator chose.
  expect(await books(user.userId)).toEqual({ coins: 0, owedCoins: 400, locked: false, chargebacks: 1 });
  expect(payments.refundCalls.map((call) => [call.idempotencyKey, call.reason, call.caseId])).toEqual([
    [deskRefundKey(user.rechargeId), 'support_desk', user.caseId],
  ]);

  // Stripe's charge.refunded for it, then the same event again: nothing changes, no lock.
  const [event] = payments.refundEvents;
  if (!event) throw new Error('no refund event');
  expect(
    await handleStripeEvent(
      webhookDeps(store, () => new Date(), payments),
      event,
    ),
  ).toBe('duplicate');
  expect(
    await handleStripeEvent(
      webhookDeps(store, () => new Date(), payments),
      event,
    ),
  ).toBe('duplicate');
  // The replayed resolve: the same answer, no second refund, nothing taken twice.
  const replay = await resolveCase(deps, operator, user.caseId, refundAndLift(user.rechargeId), {
    key: 'k1',
    fingerprint: 'f1',
  });
  expect(replay.body).toEqual(first.body);
  expect(payments.refundCalls).toHaveLength(1);
  expect(await books(user.userId)).toEqual({ coins: 0, owedCoins: 400, locked: false, chargebacks: 1 });
  const recharge = await readRecharge(store, user.rechargeId);
  expect([recharge?.refundedMinor, recharge?.clawedCoins]).toEqual([599, 500]);
});

it('a desk refund whose webhook lands first is applied by the webhook alone, without a lock', async () => {
  const payments = new DeskStripe();
  payments.webhookFirst = true;
  const deps = { store, payments, now: () => new Date(), newId };
  const user = await reportedUser(payments, 0);

  await resolveCase(deps, operator, user.caseId, refundAndLift(user.rechargeId), { key: 'k2', fingerprint: 'f2' });
  expect(await books(user.userId)).toEqual({ coins: 0, owedCoins: 0, locked: false, chargebacks: 1 });
  const [chargeback] = (await entriesOf(store, user.userId)).filter((item) => item.entryType === 'chargeback');
  expect(chargeback?.coins).toBe(-500);
  // The desk's own step, run again, finds nothing left to take; the webhook replayed neither.
  await completeDeskRefunds(deps, user.caseId);
  const [event] = payments.refundEvents;
  if (!event) throw new Error('no refund event');
  expect(
    await handleStripeEvent(
      webhookDeps(store, () => new Date(), payments),
      event,
    ),
  ).toBe('duplicate');
  expect(await books(user.userId)).toEqual({ coins: 0, owedCoins: 0, locked: false, chargebacks: 1 });
  // A desk refund opens no new case: the webhook that did not lock is not a case.
  const open = await listOpenCases(store, { limit: 100 });
  expect(open.items.filter((item) => item.userId === user.userId)).toEqual([]);
});

it('a crash between closing the case and calling Stripe is finished by the same request, once', async () => {
  const payments = new DeskStripe();
  const deps = { store, payments, now: () => new Date(), newId };
  const user = await reportedUser(payments, 0);
  payments.failNextRefund = true;

  const body = { ...refundAndLift(user.rechargeId), lock: 'keep' as const };
  await expect(resolveCase(deps, operator, user.caseId, body, { key: 'k3', fingerprint: 'f3' })).rejects.toBeInstanceOf(
    TransientDependencyError,
  );
  // Closed and marked as the desk's, but nothing taken yet: no coin moved without its refund.
  expect((await readCase(store, user.caseId)).status).toBe('resolved');
  expect((await readRecharge(store, user.rechargeId))?.deskRefund?.caseId).toBe(user.caseId);
  expect(await books(user.userId)).toEqual({ coins: 500, owedCoins: 0, locked: true, chargebacks: 0 });

  // Another key is a second resolution of a closed case: refused, nothing done.
  await expect(
    resolveCase(deps, operator, user.caseId, body, { key: 'other', fingerprint: 'f3' }),
  ).rejects.toBeInstanceOf(ConflictError);
  expect(await books(user.userId)).toEqual({ coins: 500, owedCoins: 0, locked: true, chargebacks: 0 });

  const retried = await resolveCase(deps, operator, user.caseId, body, { key: 'k3', fingerprint: 'f3' });
  expect(retried.status).toBe(200);
  expect(await books(user.userId)).toEqual({ coins: 0, owedCoins: 0, locked: true, chargebacks: 1 });
  await resolveCase(deps, operator, user.caseId, body, { key: 'k3', fingerprint: 'f3' });
  expect(payments.refundedKeys.size).toBe(1);
  expect(await books(user.userId)).toEqual({ coins: 0, owedCoins: 0, locked: true, chargebacks: 1 });
});

it('a crash that is never retried is finished by the expiry sweep a day later, once, and leaves its index', async () => {
  const payments = new DeskStripe();
  const deps = { store, payments, now: () => new Date(), newId };
  const user = await reportedUser(payments, 0);
  payments.failNextRefund = true;
  await expect(
    resolveCase(deps, operator, user.caseId, refundAndLift(user.rechargeId), { key: 'k8', fingerprint: 'f8' }),
  ).rejects.toBeInstanceOf(TransientDependencyError);
  const inIndex = async () => {
    const item = await store.getItem(keys.recharge(user.rechargeId), { consistent: true });
    return typeof item?.statusPk === 'string';
  };
  expect(await inIndex()).toBe(true);

  const dayLater = () => new Date(Date.now() + 25 * 60 * 60 * 1000);
  const sweep = () =>
    expirePendingRecharges({
      store,
      payments,
      now: dayLater,
      finishDeskRefund: (caseId) => completeDeskRefunds(deps, caseId),
    });
  await sweep();
  expect(await books(user.userId)).toEqual({ coins: 0, owedCoins: 0, locked: false, chargebacks: 1 });
  expect(await inIndex()).toBe(false);
  await sweep();
  expect(payments.refundedKeys.size).toBe(1);
  expect(await books(user.userId)).toEqual({ coins: 0, owedCoins: 0, locked: false, chargebacks: 1 });
});

it('a refund the desk did not ask for still locks the wallet and opens a case', async () => {
  const payments = new DeskStripe();
  const user = await reportedUser(payments, 0);
  await resolveCase(
    { store, payments, now: () => new Date(), newId },
    operator,
    user.caseId,
    { refunds: [], lock: 'lift', note: '', reason: 'false alarm' },
    { key: 'k4', fingerprint: 'f4' },
  );
  expect((await books(user.userId)).locked).toBe(false);

  expect(await handleStripeEvent(webhookDeps(store), events.refunded(user.paymentIntentId, 599, 599))).toBe(
    'clawed_back',
  );
  const wallet = await store.getItem(keys.wallet(user.userId), { consistent: true });
  expect([wallet?.locked, wallet?.lockReason]).toEqual([true, 'dispute']);
  const open = (await listOpenCases(store, { limit: 100 })).items.filter((item) => item.userId === user.userId);
  expect(open.map((item) => [item.kind, item.rechargeId])).toEqual([['wallet_locked', user.rechargeId]]);
});

it("lifts a dispute's lock; the case leaves the open list and one audited record says who, what and why", async () => {
  const payments = new DeskStripe();
  const user = await reportedUser(payments, 0);
  expect(await handleStripeEvent(webhookDeps(store), events.dispute(user.paymentIntentId, 599))).toBe('clawed_back');
  const open = (await listOpenCases(store, { limit: 100 })).items.filter((item) => item.userId === user.userId);
  // Oldest first: the report, then the dispute's lock.
  expect(open.map((item) => item.kind)).toEqual(['report', 'wallet_locked']);
  const lockCase = open[1];
  if (!lockCase) throw new Error('no lock case');

  const detail = await getCaseDetail(store, lockCase.caseId);
  expect(detail.wallet).toMatchObject({ coins: 0, locked: true, lockReason: 'dispute' });
  expect(detail.recharges.map((choice) => [choice.rechargeId, choice.refundable])).toEqual([[user.rechargeId, false]]);

  const resolved = await resolveCase(
    { store, payments, now: () => new Date(), newId },
    operator,
    lockCase.caseId,
    { refunds: [], lock: 'lift', note: 'customer verified by phone', reason: 'dispute handled' },
    { key: 'k5', fingerprint: 'f5' },
  );
  const wallet = await store.getItem(keys.wallet(user.userId), { consistent: true });
  expect([wallet?.locked, wallet?.lockReason]).toEqual([false, undefined]);
  const stillOpen = (await listOpenCases(store, { limit: 100 })).items.filter((item) => item.userId === user.userId);
  expect(stillOpen.map((item) => item.caseId)).toEqual([user.caseId]);

  const trail = await listAudit(store, { limit: 100 });
  const records = trail.items.filter((record) => record.target === `case:${lockCase.caseId}`);
  expect(records).toHaveLength(1);
  expect(records[0]).toMatchObject({
    operatorId: operator.userId,
    action: 'case.resolve',
    at: resolved.body.resolution.resolvedAt,
    details: {
      userId: user.userId,
      lock: 'lift',
      note: 'customer verified by phone',
      reason: 'dispute handled',
      refunds: [],
    },
  });
});

it('refuses a recharge of another wallet, an unknown one, or one it cannot refund; nothing changes', async () => {
  const payments = new DeskStripe();
  const deps = { store, payments, now: () => new Date(), newId };
  const user = await reportedUser(payments, 0);
  const other = await reportedUser(payments, 0);
  const auditBefore = (await listAudit(store, { limit: 100 })).items.length;
  const before = [await books(user.userId), await books(other.userId)];

  const attempts: Array<[string, string]> = [
    [other.rechargeId, 'foreign'],
    ['rc_does_not_exist', 'unknown'],
  ];
  for (const [rechargeId, key] of attempts) {
    await expect(
      resolveCase(deps, operator, user.caseId, refundAndLift(rechargeId), { key, fingerprint: key }),
    ).rejects.toBeInstanceOf(ValidationError);
  }
  await expect(
    resolveCase(deps, operator, 'rpt_missing', refundAndLift(user.rechargeId), { key: 'nf', fingerprint: 'nf' }),
  ).rejects.toBeInstanceOf(NotFoundError);
  // A disputed recharge cannot be refunded (Stripe refuses a disputed charge).
  expect(await handleStripeEvent(webhookDeps(store), events.dispute(other.paymentIntentId, 599))).toBe('clawed_back');
  const afterDispute = await books(other.userId);
  await expect(
    resolveCase(deps, operator, other.caseId, refundAndLift(other.rechargeId), { key: 'dp', fingerprint: 'dp' }),
  ).rejects.toBeInstanceOf(ConflictError);

  expect([await books(user.userId), await books(other.userId)]).toEqual([before[0], afterDispute]);
  expect((await readCase(store, user.caseId)).status).toBe('open');
  expect((await readCase(store, other.caseId)).status).toBe('open');
  expect((await readRecharge(store, other.rechargeId))?.deskRefund).toBeUndefined();
  expect((await listAudit(store, { limit: 100 })).items.length).toBe(auditBefore);
  expect(payments.refundCalls).toEqual([]);
});

it("tells the reporter: the report's status and a report_resolved notification, for the owner only", async () => {
  const payments = new DeskStripe();
  const user = await reportedUser(payments, 0);
  const owner = adult(user.userId);
  expect(await getReportStatus(store, owner, user.reportId)).toMatchObject({
    status: 'open',
    outcome: null,
    resolvedAt: null,
  });
  await expect(getReportStatus(store, adult('someone-else'), user.reportId)).rejects.toBeInstanceOf(NotFoundError);

  const resolved = await resolveCase(
    { store, payments, now: () => new Date(), newId },
    operator,
    user.caseId,
    refundAndLift(user.rechargeId),
    { key: 'k7', fingerprint: 'f7' },
  );
  const status = await getReportStatus(store, owner, user.reportId);
  expect(status).toEqual({
    reportId: user.reportId,
    transactionId: expect.any(String),
    status: 'resolved',
    createdAt: expect.any(String),
    outcome: { lock: 'lifted', refundedRechargeIds: [user.rechargeId] },
    resolvedAt: resolved.body.resolution.resolvedAt,
  });
  const notifications = await listNotifications({ store }, owner, { limit: 10 });
  expect(notifications.items).toEqual([
    {
      id: expect.stringMatching(/^ntf_/),
      type: 'report_resolved',
      reportId: user.reportId,
      outcome: { lock: 'lifted', refundedRechargeIds: [user.rechargeId] },
      createdAt: resolved.body.resolution.resolvedAt,
    },
  ]);
  expect((await listNotifications({ store }, adult('someone-else'), { limit: 10 })).items).toEqual([]);
});

import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { keys } from '../../../shared/adapters/dynamo/keys';
import type { DynamoLedgerStore } from '../../../shared/adapters/dynamo/ledger-store';
import { AgeRestrictedError, NotFoundError } from '../../../shared/domain/errors';
import { logger } from '../../../shared/logger';
import { applyAccountUpdated, createPayoutAccount, getPayoutAccount } from '../../../shared/usecases/payout-account';
import { adultCaller, FakeConnect, freshPayoutLedger } from './payout-fixtures';

let store: DynamoLedgerStore;
let client: DynamoDBClient;

beforeAll(async () => {
  logger.setLogLevel('SILENT');
  ({ store, client } = await freshPayoutLedger());
});
afterAll(() => client.destroy());

const deps = (connect: FakeConnect) => ({ store, connect, now: () => new Date() });

describe('payout account', () => {
  it('creates the Connect account once; a second call answers the same account with a fresh link', async () => {
    const connect = new FakeConnect();
    const first = await createPayoutAccount(deps(connect), adultCaller('linker'));
    expect(first).toEqual({
      accountId: expect.stringMatching(/^acct_/),
      onboardingUrl: expect.stringContaining(first.accountId),
      payoutsEnabled: false,
    });
    const second = await createPayoutAccount(deps(connect), adultCaller('linker'));
    expect(second.accountId).toBe(first.accountId);
    expect(second.onboardingUrl).not.toBe(first.onboardingUrl);
    expect(connect.accounts.size).toBe(1);
    expect(await getPayoutAccount({ store }, adultCaller('linker'))).toEqual({
      accountId: first.accountId,
      payoutsEnabled: false,
    });
    expect(await store.getItem(keys.connectAccount(first.accountId), { consistent: true })).toMatchObject({
      userId: 'linker',
    });
  });

  it('keeps one account when two first calls race', async () => {
    const connect = new FakeConnect();
    const [a, b] = await Promise.all([
      createPayoutAccount(deps(connect), adultCaller('racer')),
      createPayoutAccount(deps(connect), adultCaller('racer')),
    ]);
    expect(a.accountId).toBe(b.accountId);
    expect((await getPayoutAccount({ store }, adultCaller('racer'))).accountId).toBe(a.accountId);
  });

  it('is 404 before an account exists, and adults only', async () => {
    await expect(getPayoutAccount({ store }, adultCaller('nobody'))).rejects.toBeInstanceOf(NotFoundError);
    const minor = {
      userId: 'minor',
      birthdate: `${new Date().getUTCFullYear() - 16}-01-01`,
      country: 'US',
      parentalConsent: true,
    };
    const connect = new FakeConnect();
    await expect(createPayoutAccount(deps(connect), minor)).rejects.toBeInstanceOf(AgeRestrictedError);
    expect(connect.accounts.size).toBe(0);
  });

  it('records payoutsEnabled from account.updated, and ignores accounts it never linked', async () => {
    const connect = new FakeConnect();
    const { accountId } = await createPayoutAccount(deps(connect), adultCaller('onboarder'));
    const updatedAt = new Date(Date.now() + 60_000);
    await applyAccountUpdated({ store, now: () => updatedAt }, { id: accountId, payoutsEnabled: true });
    expect(await getPayoutAccount({ store }, adultCaller('onboarder'))).toEqual({ accountId, payoutsEnabled: true });
    expect((await store.getItem(keys.payoutAccount('onboarder'), { consistent: true }))?.updatedAt).toBe(
      updatedAt.toISOString(),
    );
    await applyAccountUpdated({ store, now: () => new Date() }, { id: accountId, payoutsEnabled: false });
    expect((await getPayoutAccount({ store }, adultCaller('onboarder'))).payoutsEnabled).toBe(false);
    await expect(
      applyAccountUpdated({ store, now: () => new Date() }, { id: 'acct_elsewhere', payoutsEnabled: true }),
    ).resolves.toBeUndefined();
    expect(await store.getItem(keys.connectAccount('acct_elsewhere'), { consistent: true })).toBeUndefined();
  });
});

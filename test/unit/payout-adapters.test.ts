import { SendMessageCommand } from '@aws-sdk/client-sqs';
import Stripe from 'stripe';
import { SqsPayoutQueue, payoutMessageSchema } from '../../shared/adapters/payout-queue';
import {
  accountIdempotencyKey,
  classifyStripeError,
  PermanentTransferError,
  StripeConnectPayouts,
} from '../../shared/adapters/stripe-connect';
import { InvariantViolation, TransientDependencyError } from '../../shared/domain/errors';

/** A Stripe double with just the resources the adapter touches; every call is recorded. */
function fakeStripe(overrides: { transferCreate?: jest.Mock; transferList?: jest.Mock } = {}) {
  const stripe = {
    accounts: { create: jest.fn(async () => ({ id: 'acct_1', payouts_enabled: false })) },
    accountLinks: { create: jest.fn(async () => ({ url: 'https://connect.stripe.com/setup/e/acct_1/abc' })) },
    transfers: {
      create: overrides.transferCreate ?? jest.fn(async () => ({ id: 'tr_1' })),
      list: overrides.transferList ?? jest.fn(async () => ({ data: [] })),
    },
  };
  return {
    stripe,
    connect: new StripeConnectPayouts(async () => stripe as unknown as Stripe, {
      returnUrl: 'https://app.example/done',
      refreshUrl: 'https://app.example/again',
    }),
  };
}

const transfer = {
  payoutId: 'po_123',
  userId: 'creator-1',
  accountId: 'acct_1',
  amount: { amount: 1_000, currency: 'USD' as const },
};

describe('StripeConnectPayouts', () => {
  it('creates an Express account with an idempotency key from the user id', async () => {
    const { stripe, connect } = fakeStripe();
    expect(await connect.createAccount({ userId: 'creator-1', country: 'GB' })).toEqual({
      accountId: 'acct_1',
      payoutsEnabled: false,
    });
    expect(stripe.accounts.create).toHaveBeenCalledWith(
      {
        type: 'express',
        country: 'GB',
        capabilities: { transfers: { requested: true } },
        metadata: { userId: 'creator-1' },
      },
      { idempotencyKey: accountIdempotencyKey('creator-1') },
    );
    expect(accountIdempotencyKey('creator-1')).toBe(accountIdempotencyKey('creator-1'));
    expect(accountIdempotencyKey('creator-1')).not.toBe(accountIdempotencyKey('creator-2'));
    expect(accountIdempotencyKey('x'.repeat(1_000)).length).toBeLessThanOrEqual(255);
  });

  it('asks for an onboarding link with the configured return and refresh URLs', async () => {
    const { stripe, connect } = fakeStripe();
    expect(await connect.createAccountLink('acct_1')).toEqual({ url: 'https://connect.stripe.com/setup/e/acct_1/abc' });
    expect(stripe.accountLinks.create).toHaveBeenCalledWith({
      account: 'acct_1',
      type: 'account_onboarding',
      return_url: 'https://app.example/done',
      refresh_url: 'https://app.example/again',
    });
  });

  it('sends a transfer keyed, grouped and tagged by the payout id', async () => {
    const { stripe, connect } = fakeStripe();
    expect(await connect.createTransfer(transfer)).toEqual({ transferId: 'tr_1' });
    expect(stripe.transfers.create).toHaveBeenCalledWith(
      {
        amount: 1_000,
        currency: 'usd',
        destination: 'acct_1',
        transfer_group: 'po_123',
        metadata: { payoutId: 'po_123', userId: 'creator-1' },
      },
      { idempotencyKey: 'po_123' },
    );
  });

  it('finds an existing transfer by its group, and refuses to guess when there are two', async () => {
    const list = jest.fn(async () => ({ data: [{ id: 'tr_9' }] }));
    const { connect } = fakeStripe({ transferList: list });
    expect(await connect.findTransferByGroup('po_123')).toEqual({ transferId: 'tr_9' });
    expect(list).toHaveBeenCalledWith({ transfer_group: 'po_123', limit: 10 });
    list.mockResolvedValueOnce({ data: [] });
    expect(await connect.findTransferByGroup('po_123')).toBeUndefined();
    list.mockResolvedValueOnce({ data: [{ id: 'tr_1' }, { id: 'tr_2' }] });
    await expect(connect.findTransferByGroup('po_123')).rejects.toBeInstanceOf(InvariantViolation);
    // A failed lookup never becomes "no transfer": it is retried later.
    list.mockRejectedValueOnce(new Stripe.errors.StripeInvalidRequestError({ message: 'bad', statusCode: 400 }));
    await expect(connect.findTransferByGroup('po_123')).rejects.toBeInstanceOf(TransientDependencyError);
  });

  it.each([
    ['a 500', new Stripe.errors.StripeAPIError({ message: 'boom', statusCode: 500 }), TransientDependencyError],
    [
      'a 409 lock conflict',
      new Stripe.errors.StripeAPIError({ message: 'in use', statusCode: 409 }),
      TransientDependencyError,
    ],
    [
      'a 429',
      new Stripe.errors.StripeRateLimitError({ message: 'slow down', statusCode: 429 }),
      TransientDependencyError,
    ],
    [
      'a timeout',
      new Stripe.errors.StripeConnectionError({ message: 'Request aborted due to timeout being reached (10000ms)' }),
      TransientDependencyError,
    ],
    ['a socket reset', Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), TransientDependencyError],
    [
      'an invalid destination',
      new Stripe.errors.StripeInvalidRequestError({
        message: 'invalid',
        code: 'account_invalid',
        param: 'destination',
        statusCode: 400,
      }),
      PermanentTransferError,
    ],
    [
      'a destination without transfers',
      new Stripe.errors.StripeInvalidRequestError({
        message: 'no capability',
        code: 'insufficient_capabilities_for_transfer',
        statusCode: 400,
      }),
      PermanentTransferError,
    ],
    [
      "the platform's own balance running short",
      new Stripe.errors.StripeInvalidRequestError({
        message: 'balance',
        code: 'balance_insufficient',
        statusCode: 400,
      }),
      TransientDependencyError,
    ],
    [
      'the same key with other parameters',
      new Stripe.errors.StripeIdempotencyError({ message: 'key reused', statusCode: 400 }),
      InvariantViolation,
    ],
    [
      'our key refused',
      new Stripe.errors.StripeAuthenticationError({ message: 'bad key', statusCode: 401 }),
      InvariantViolation,
    ],
  ])('classifies %s', async (_name, error, expected) => {
    const { connect } = fakeStripe({ transferCreate: jest.fn(async () => Promise.reject(error)) });
    const thrown = await connect.createTransfer(transfer).then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect(thrown).toBeInstanceOf(expected);
    expect((thrown as Error).cause).toBe(error);
  });

  it('keeps the refusal code on a permanent error', async () => {
    const refusal = new Stripe.errors.StripeInvalidRequestError({
      message: 'invalid',
      code: 'account_invalid',
      statusCode: 400,
    });
    expect(classifyStripeError(refusal)).toBe('permanent');
    const { connect } = fakeStripe({ transferCreate: jest.fn(async () => Promise.reject(refusal)) });
    await expect(connect.createTransfer(transfer)).rejects.toMatchObject({ code: 'account_invalid' });
  });

  it('refuses to pay out in another currency than USD', async () => {
    const { stripe, connect } = fakeStripe();
    await expect(
      connect.createTransfer({ ...transfer, amount: { amount: 1_000, currency: 'EUR' } }),
    ).rejects.toBeInstanceOf(InvariantViolation);
    expect(stripe.transfers.create).not.toHaveBeenCalled();
  });
});

describe('SqsPayoutQueue', () => {
  it('sends exactly the payout id to the configured queue', async () => {
    const sent: unknown[] = [];
    const queue = new SqsPayoutQueue(
      { send: jest.fn(async (command: unknown) => void sent.push(command)) } as never,
      'https://sqs.us-east-1.amazonaws.com/1/payouts',
    );
    await queue.send('po_123');
    expect(sent).toHaveLength(1);
    const command = sent[0] as SendMessageCommand;
    expect(command).toBeInstanceOf(SendMessageCommand);
    expect(command.input).toEqual({
      QueueUrl: 'https://sqs.us-east-1.amazonaws.com/1/payouts',
      MessageBody: '{"payoutId":"po_123"}',
    });
    expect(payoutMessageSchema.parse(JSON.parse(command.input.MessageBody ?? ''))).toEqual({ payoutId: 'po_123' });
  });

  it('parses only well-formed messages', () => {
    expect(payoutMessageSchema.safeParse({ payoutId: '' }).success).toBe(false);
    expect(payoutMessageSchema.safeParse({ payoutId: 'po_1', amount: 5 }).success).toBe(false);
    expect(payoutMessageSchema.safeParse({}).success).toBe(false);
  });
});

import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
import { TransientDependencyError } from '../../shared/domain/errors';

/**
 * The worker handler's batch rules, with the use case replaced: each record is its own outcome,
 * a failure reports only that record (partial batch response), and a record is not started when
 * too little time is left.
 */
const processPayout = jest.fn<Promise<string>, [unknown, string]>();
jest.mock('../../shared/usecases/payouts', () => ({
  ...jest.requireActual('../../shared/usecases/payouts'),
  processPayout: (deps: unknown, payoutId: string) => processPayout(deps, payoutId),
}));

import { UnknownPayoutError } from '../../shared/usecases/payouts';
import { logger } from '../../shared/logger';
import { handler, RECORD_START_BUDGET_MS } from '../../functions/queue/payout-worker';

beforeAll(() => {
  logger.setLogLevel('SILENT');
  Object.assign(process.env, { LEDGER_TABLE: 'Ledger', CONNECTIONS_TABLE: 'Connections', AWS_REGION: 'us-east-1' });
});
beforeEach(() => processPayout.mockReset());

function record(messageId: string, body: string): SQSRecord {
  return {
    messageId,
    receiptHandle: `rh-${messageId}`,
    body,
    attributes: {
      ApproximateReceiveCount: '1',
      SentTimestamp: '0',
      SenderId: '0',
      ApproximateFirstReceiveTimestamp: '0',
    },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:payouts',
    awsRegion: 'us-east-1',
  };
}

function context(remainingMs: () => number): Context {
  return { getRemainingTimeInMillis: remainingMs } as unknown as Context;
}

const plenty = context(() => 60_000);

describe('payout worker handler', () => {
  it('reports only the failed records of a batch: nine settle, the poison one goes back', async () => {
    processPayout.mockImplementation(async (_deps, payoutId) => {
      if (payoutId === 'po_missing') throw new UnknownPayoutError(payoutId);
      return 'paid';
    });
    const records = Array.from({ length: 10 }, (_, index) =>
      record(`m${index}`, JSON.stringify({ payoutId: index === 6 ? 'po_missing' : `po_${index}` })),
    );
    const event: SQSEvent = { Records: records };
    expect(await handler(event, plenty)).toEqual({ batchItemFailures: [{ itemIdentifier: 'm6' }] });
    expect(processPayout).toHaveBeenCalledTimes(10);
  });

  it('fails unparseable messages without calling the use case, and transient errors for a retry', async () => {
    processPayout.mockImplementation(async (_deps, payoutId) => {
      if (payoutId === 'po_down') throw new TransientDependencyError('Stripe is down');
      return payoutId === 'po_dup' ? 'duplicate' : 'paid';
    });
    const event: SQSEvent = {
      Records: [
        record('a', 'not json'),
        record('b', JSON.stringify({ payoutId: 'po_down' })),
        record('c', JSON.stringify({ payoutId: 'po_dup' })),
        record('d', JSON.stringify({ nothing: true })),
        record('e', JSON.stringify({ payoutId: 'po_ok' })),
      ],
    };
    expect(await handler(event, plenty)).toEqual({
      batchItemFailures: [{ itemIdentifier: 'a' }, { itemIdentifier: 'b' }, { itemIdentifier: 'd' }],
    });
    expect(processPayout.mock.calls.map(([, payoutId]) => payoutId)).toEqual(['po_down', 'po_dup', 'po_ok']);
  });

  it('hands back, unstarted, the records there is no time left for', async () => {
    let remaining = RECORD_START_BUDGET_MS + 1_000;
    processPayout.mockImplementation(async () => {
      remaining -= 2_000;
      return 'paid';
    });
    const event: SQSEvent = {
      Records: [
        record('1', '{"payoutId":"po_1"}'),
        record('2', '{"payoutId":"po_2"}'),
        record('3', '{"payoutId":"po_3"}'),
      ],
    };
    expect(
      await handler(
        event,
        context(() => remaining),
      ),
    ).toEqual({ batchItemFailures: [{ itemIdentifier: '2' }, { itemIdentifier: '3' }] });
    expect(processPayout).toHaveBeenCalledTimes(1);
  });
});

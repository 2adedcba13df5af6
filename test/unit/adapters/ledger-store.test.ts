import {
  ConditionalCheckFailedException,
  PutItemCommand,
  type QueryCommand,
  TransactionCanceledException,
  TransactWriteItemsCommand,
  UpdateItemCommand,
  type AttributeValue,
} from '@aws-sdk/client-dynamodb';
import { conditions, FALSE } from '../../../shared/adapters/dynamo/conditions';
import { keys } from '../../../shared/adapters/dynamo/keys';
import { DynamoLedgerStore } from '../../../shared/adapters/dynamo/ledger-store';
import { InsufficientCoinsError, InvariantViolation, TransientDependencyError } from '../../../shared/domain/errors';

/** A DynamoDB client double: records every command and answers from a script. */
function fakeClient(answers: Array<(command: unknown) => unknown>) {
  const sent: unknown[] = [];
  return {
    sent,
    client: {
      send: jest.fn(async (command: unknown) => {
        sent.push(command);
        const answer = answers.shift();
        if (!answer) return {};
        return answer(command);
      }),
    },
  };
}

const cancelled = (codes: string[], item?: Record<string, AttributeValue>) => () => {
  throw new TransactionCanceledException({
    message: 'cancelled',
    $metadata: {},
    CancellationReasons: codes.map((Code) => ({
      Code,
      ...(Code === 'ConditionalCheckFailed' && item ? { Item: item } : {}),
    })),
  });
};

const noRetryDelay = { maxAttempts: 3, baseDelayMs: 0, maxDelayMs: 0 };

describe('DynamoLedgerStore.transactWrite', () => {
  const debit = (store: DynamoLedgerStore) =>
    store.update(
      'debit sender',
      keys.wallet('alice'),
      {
        expression: 'SET coins = coins - :cost',
        condition: `${conditions.coinsCoverCost} AND ${conditions.walletUnlocked}`,
        values: { ':cost': 20, ':false': false },
      },
      (old) => new InsufficientCoinsError(`has ${String(old?.coins)}`),
    );

  it('sends exactly the items, conditions and a ClientRequestToken', async () => {
    const { client, sent } = fakeClient([() => ({})]);
    const store = new DynamoLedgerStore(client, 'Ledger', noRetryDelay);
    await store.transactWrite([debit(store)], { clientRequestToken: 'token-1' });
    expect(sent).toHaveLength(1);
    const command = sent[0] as TransactWriteItemsCommand;
    expect(command).toBeInstanceOf(TransactWriteItemsCommand);
    expect(command.input).toEqual({
      ClientRequestToken: 'token-1',
      TransactItems: [
        {
          Update: {
            TableName: 'Ledger',
            Key: { pk: { S: 'USER#alice' }, sk: { S: 'WALLET' } },
            UpdateExpression: 'SET coins = coins - :cost',
            ConditionExpression: 'coins >= :cost AND (attribute_not_exists(locked) OR locked = :false)',
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
            ExpressionAttributeValues: { ':cost': { N: '20' }, ':false': FALSE },
          },
        },
      ],
    });
  });

  it('turns the failed condition into the error its op names, with the old item', async () => {
    const { client } = fakeClient([cancelled(['ConditionalCheckFailed'], { coins: { N: '3' } })]);
    const store = new DynamoLedgerStore(client, 'Ledger', noRetryDelay);
    await expect(store.transactWrite([debit(store)])).rejects.toThrow(new InsufficientCoinsError('has 3'));
  });

  it('blames the right op when the second item fails', async () => {
    const { client } = fakeClient([cancelled(['None', 'ConditionalCheckFailed'])]);
    const store = new DynamoLedgerStore(client, 'Ledger', noRetryDelay);
    const guard = store.put(
      'idempotency',
      { ...keys.idempotency('alice', 'gift', 'k'), at: 1 },
      { expression: conditions.isNew },
      () => new Error('replay'),
    );
    await expect(store.transactWrite([debit(store), guard])).rejects.toThrow('replay');
  });

  it('retries conflicts under the same ClientRequestToken, then succeeds', async () => {
    const { client, sent } = fakeClient([
      cancelled(['TransactionConflict']),
      cancelled(['None', 'TransactionConflict']),
      () => ({}),
    ]);
    const store = new DynamoLedgerStore(client, 'Ledger', noRetryDelay);
    await store.transactWrite([debit(store)]);
    expect(sent).toHaveLength(3);
    const tokens = sent.map((command) => (command as TransactWriteItemsCommand).input.ClientRequestToken);
    expect(new Set(tokens).size).toBe(1);
  });

  it('gives up after the bounded attempts with a transient error', async () => {
    const { client, sent } = fakeClient([
      cancelled(['TransactionConflict']),
      cancelled(['TransactionConflict']),
      cancelled(['TransactionConflict']),
    ]);
    const store = new DynamoLedgerStore(client, 'Ledger', noRetryDelay);
    await expect(store.transactWrite([debit(store)])).rejects.toBeInstanceOf(TransientDependencyError);
    expect(sent).toHaveLength(3);
  });

  it('refuses a condition failure that no op maps', async () => {
    const { client } = fakeClient([cancelled(['ConditionalCheckFailed'])]);
    const store = new DynamoLedgerStore(client, 'Ledger', noRetryDelay);
    const unmapped = store.update('unmapped', keys.wallet('a'), {
      expression: 'SET x = :x',
      condition: 'attribute_exists(pk)',
      values: { ':x': 1 },
    });
    await expect(store.transactWrite([unmapped])).rejects.toBeInstanceOf(InvariantViolation);
  });

  it('refuses more than 100 items before sending anything', async () => {
    const { client, sent } = fakeClient([]);
    const store = new DynamoLedgerStore(client, 'Ledger', noRetryDelay);
    const ops = Array.from({ length: 101 }, (_, i) => store.put(`p${i}`, { pk: `P#${i}`, sk: 'X' }));
    await expect(store.transactWrite(ops)).rejects.toBeInstanceOf(InvariantViolation);
    expect(sent).toHaveLength(0);
  });
});

describe('DynamoLedgerStore.writeOne', () => {
  const total = (store: DynamoLedgerStore) =>
    store.update(
      'leaderboard',
      { pk: 'STREAM#st_1#LB3', sk: 'U#alice' },
      { expression: 'SET lbSeq = :to ADD lbCoins :coins', condition: 'lbSeq < :to', values: { ':to': 9, ':coins': 5 } },
      (old) => new Error(`folded to ${String(old?.lbSeq)}`),
    );

  it('sends one UpdateItem (not a transaction) with the condition and asks for the old item on failure', async () => {
    const { client, sent } = fakeClient([() => ({})]);
    const store = new DynamoLedgerStore(client, 'Ledger', noRetryDelay);
    await store.writeOne(total(store));
    expect(sent).toHaveLength(1);
    expect(sent[0]).toBeInstanceOf(UpdateItemCommand);
    expect((sent[0] as UpdateItemCommand).input).toEqual(
      expect.objectContaining({
        TableName: 'Ledger',
        UpdateExpression: 'SET lbSeq = :to ADD lbCoins :coins',
        ConditionExpression: 'lbSeq < :to',
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
    );
  });

  it('sends a put as one PutItem', async () => {
    const { client, sent } = fakeClient([() => ({})]);
    const store = new DynamoLedgerStore(client, 'Ledger', noRetryDelay);
    await store.writeOne(store.put('marker', { pk: 'P#1', sk: 'X' }));
    expect(sent[0]).toBeInstanceOf(PutItemCommand);
  });

  it('turns the failed condition into the error its op names, with the old item', async () => {
    const failed = () => {
      throw new ConditionalCheckFailedException({ message: 'no', $metadata: {}, Item: { lbSeq: { N: '9' } } });
    };
    const { client } = fakeClient([failed]);
    const store = new DynamoLedgerStore(client, 'Ledger', noRetryDelay);
    await expect(store.writeOne(total(store))).rejects.toThrow('folded to 9');
  });

  it('refuses a condition check, which only a transaction can carry, before sending anything', async () => {
    const { client, sent } = fakeClient([]);
    const store = new DynamoLedgerStore(client, 'Ledger', noRetryDelay);
    const check = store.conditionCheck(
      'live',
      { pk: 'S', sk: 'S' },
      { expression: 'attribute_exists(pk)' },
      () => new Error('x'),
    );
    await expect(store.writeOne(check)).rejects.toBeInstanceOf(InvariantViolation);
    expect(sent).toHaveLength(0);
  });
});

describe('DynamoLedgerStore.query: paging by our own keys', () => {
  const liveStreams = (store: DynamoLedgerStore, startAfter?: Record<string, string | number>) =>
    store.query({
      indexName: 'byStatus',
      keyCondition: 'statusPk = :live',
      values: { ':live': 'LIVE' },
      ...(startAfter && { exclusiveStartKey: startAfter }),
    });

  it('sends a plain start key as DynamoDB attributes and answers the last key as plain values', async () => {
    const lastKey = { pk: { S: 'STREAM#st_2' }, sk: { S: 'STREAM' }, lbCoins: { N: '42' } };
    const { client, sent } = fakeClient([() => ({ Items: [], LastEvaluatedKey: lastKey })]);
    const store = new DynamoLedgerStore(client, 'Ledger', noRetryDelay);
    const page = await liveStreams(store, { pk: 'STREAM#st_1', sk: 'STREAM', statusSk: '2026-11-30T00:00:00.000Z' });
    expect((sent[0] as QueryCommand).input.ExclusiveStartKey).toEqual({
      pk: { S: 'STREAM#st_1' },
      sk: { S: 'STREAM' },
      statusSk: { S: '2026-11-30T00:00:00.000Z' },
    });
    expect(page.lastEvaluatedKey).toEqual({ pk: 'STREAM#st_2', sk: 'STREAM', lbCoins: 42 });
  });

  it('a page with no LastEvaluatedKey is the last one', async () => {
    const { client, sent } = fakeClient([() => ({ Items: [{ pk: { S: 'STREAM#st_1' } }] })]);
    const page = await liveStreams(new DynamoLedgerStore(client, 'Ledger', noRetryDelay));
    expect((sent[0] as QueryCommand).input.ExclusiveStartKey).toBeUndefined();
    expect(page).toEqual({ items: [{ pk: 'STREAM#st_1' }] });
  });

  it('a key attribute that is neither a string nor a number is a broken table, not a page', async () => {
    const { client } = fakeClient([() => ({ Items: [], LastEvaluatedKey: { pk: { BOOL: true } } })]);
    await expect(liveStreams(new DynamoLedgerStore(client, 'Ledger', noRetryDelay))).rejects.toBeInstanceOf(
      InvariantViolation,
    );
  });
});

describe('DynamoLedgerStore ops are plain data until transactWrite', () => {
  it('builds a put, an update and a condition check without the SDK, and turns each into its TransactWriteItem', () => {
    const store = new DynamoLedgerStore(fakeClient([]).client, 'Ledger', noRetryDelay);
    const mustExist = () => new InvariantViolation('gone');
    const ops = [
      store.put('entry', { ...keys.wallet('bob'), coins: 5, note: undefined }, { expression: conditions.isNew }),
      store.update('credit', keys.wallet('bob'), { expression: 'ADD coins :coins', values: { ':coins': 5 } }),
      store.conditionCheck('exists', keys.wallet('bob'), { expression: conditions.exists }, mustExist),
    ];
    expect(ops.map((op) => op.request.kind)).toEqual(['put', 'update', 'conditionCheck']);
    expect(ops[2]?.onConditionFailed).toBe(mustExist);
    expect(ops.map((op) => store.toTransactItem(op))).toEqual([
      {
        Put: {
          TableName: 'Ledger',
          Item: { pk: { S: 'USER#bob' }, sk: { S: 'WALLET' }, coins: { N: '5' } },
          ConditionExpression: 'attribute_not_exists(pk)',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        },
      },
      {
        Update: {
          TableName: 'Ledger',
          Key: { pk: { S: 'USER#bob' }, sk: { S: 'WALLET' } },
          UpdateExpression: 'ADD coins :coins',
          ExpressionAttributeValues: { ':coins': { N: '5' } },
        },
      },
      {
        ConditionCheck: {
          TableName: 'Ledger',
          Key: { pk: { S: 'USER#bob' }, sk: { S: 'WALLET' } },
          ConditionExpression: 'attribute_exists(pk)',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        },
      },
    ]);
  });
});

import { DynamoLedgerStore, TRANSACTION_RETRY } from '../../shared/adapters/dynamo/ledger-store';
import type { DynamoConnectionsStore } from '../../shared/adapters/dynamo/connections-store';
import { ApiGatewayConnectionPoster, POST_RETRY } from '../../shared/adapters/connections-api';
import { TransientDependencyError } from '../../shared/domain/errors';
import { retryWithBackoff } from '../../shared/domain/retry';

/*
 * Retry bounds and jitter of every retry loop in the adapters, with doubles: how many
 * attempts, how long each wait may be, and that a failure past the bound surfaces.
 */

afterEach(() => jest.restoreAllMocks());

describe('retryWithBackoff', () => {
  it('makes at most maxAttempts attempts, each wait uniform in [0, min(cap, base * 2^attempt)]', async () => {
    const waits: number[] = [];
    const policy = { maxAttempts: 6, baseDelayMs: 100, maxDelayMs: 1_000 };
    let attempts = 0;
    await expect(
      retryWithBackoff(
        async () => {
          attempts += 1;
          throw new Error('throttled');
        },
        policy,
        () => true,
        async (ms) => {
          waits.push(ms);
        },
        () => 0.999,
      ),
    ).rejects.toThrow('throttled');
    expect(attempts).toBe(policy.maxAttempts);
    expect(waits).toEqual([99, 199, 399, 799, 999]);

    // Jitter: the same attempt waits differently with a different random draw.
    const jittered: number[] = [];
    await retryWithBackoff(
      async (attempt) => {
        if (attempt === 0) throw new Error('once');
        return 'ok';
      },
      policy,
      () => true,
      async (ms) => {
        jittered.push(ms);
      },
      () => 0.25,
    );
    expect(jittered).toEqual([25]);
  });

  it('does not retry what is not retryable', async () => {
    let attempts = 0;
    const failing = retryWithBackoff(
      async () => {
        attempts += 1;
        throw new Error('condition failed');
      },
      TRANSACTION_RETRY,
      () => false,
      async () => undefined,
    );
    await expect(failing).rejects.toThrow('condition failed');
    expect(attempts).toBe(1);
  });
});

describe('DynamoLedgerStore.batchGet under UnprocessedKeys', () => {
  it('asks again a bounded number of times, with jittered waits, then fails as transient', async () => {
    const table = 'Ledger';
    const send = jest.fn(async (command: { input: { RequestItems: Record<string, { Keys: unknown[] }> } }) => ({
      Responses: { [table]: [] },
      UnprocessedKeys: { [table]: { Keys: command.input.RequestItems[table]?.Keys ?? [] } },
    }));
    const random = jest.spyOn(Math, 'random').mockReturnValue(0);
    const store = new DynamoLedgerStore(
      { send } as unknown as ConstructorParameters<typeof DynamoLedgerStore>[0],
      table,
    );
    await expect(store.batchGet([{ pk: 'USER#a', sk: 'WALLET' }])).rejects.toBeInstanceOf(TransientDependencyError);
    expect(send).toHaveBeenCalledTimes(TRANSACTION_RETRY.maxAttempts);
    // One jittered wait after each answer that left keys unprocessed.
    expect(random).toHaveBeenCalledTimes(TRANSACTION_RETRY.maxAttempts);
  });
});

describe('ApiGatewayConnectionPoster', () => {
  const connections = () => {
    const removed: string[] = [];
    return {
      removed,
      store: { removeGone: jest.fn(async (id: string) => void removed.push(id)) } as unknown as DynamoConnectionsStore,
    };
  };
  // Named as SignedConnectionsApi names API Gateway's answers (429, 410).
  const answered = (name: string) => Object.assign(new Error(`@connections answered`), { name });
  const throttled = () => answered('LimitExceededException');

  it('retries a 429 and delivers; past the bound reports throttled (counted, the viewer catches up) without forgetting the connection', async () => {
    jest.spyOn(Math, 'random').mockReturnValue(0);
    const { removed, store } = connections();
    const once = jest.fn().mockRejectedValueOnce(throttled()).mockResolvedValue({});
    expect(await new ApiGatewayConnectionPoster(store, { postToConnection: once }).post('c1', { type: 'pong' })).toBe(
      'sent',
    );
    expect(once).toHaveBeenCalledTimes(2);

    const always = jest.fn().mockRejectedValue(throttled());
    expect(await new ApiGatewayConnectionPoster(store, { postToConnection: always }).post('c2', { type: 'pong' })).toBe(
      'throttled',
    );
    expect(always).toHaveBeenCalledTimes(POST_RETRY.maxAttempts);
    expect(removed).toEqual([]);
  });

  it('410 Gone forgets that one connection, without retrying', async () => {
    const { removed, store } = connections();
    const gone = jest.fn().mockRejectedValue(answered('GoneException'));
    expect(await new ApiGatewayConnectionPoster(store, { postToConnection: gone }).post('c3', { type: 'pong' })).toBe(
      'gone',
    );
    expect(gone).toHaveBeenCalledTimes(1);
    expect(removed).toEqual(['c3']);
  });
});

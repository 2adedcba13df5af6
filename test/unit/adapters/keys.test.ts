import fc from 'fast-check';
import {
  EVENT_LOG_PARTITIONS,
  eventLogPartition,
  keys,
  keyUserId,
  userIdFromKey,
} from '../../../shared/adapters/dynamo/keys';

describe('user ids inside keys', () => {
  it('are encoded injectively and never carry the # separator', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), fc.string({ maxLength: 40 }), (a, b) => {
        expect(keyUserId(a)).not.toContain('#');
        expect(userIdFromKey(keyUserId(a))).toBe(a);
        if (a !== b) expect(keyUserId(a)).not.toBe(keyUserId(b));
      }),
      { numRuns: 2_000 },
    );
  });

  it('leave ids without % or # exactly as they were, so existing items keep their keys', () => {
    fc.assert(
      fc.property(
        fc.string().filter((id) => !id.includes('%') && !id.includes('#')),
        (id) => {
          expect(keys.wallet(id).pk).toBe(`USER#${id}`);
        },
      ),
    );
    expect(keys.wallet('auth0|123').pk).toBe('USER#auth0|123');
  });

  it('no user’s wallet or entry partition is another user’s shard partition', () => {
    const creator = 'creator';
    const attacker = `${creator}#E18`;
    expect(keys.wallet(attacker).pk).not.toBe(keys.shardEntryPartition(creator, 18));
    expect(keys.entry(attacker, 't', 'x').pk).toBe('USER#creator%23E18');
    expect(keys.idempotency(attacker, 'gift', 'k').pk.startsWith('IDEM#creator%23E18#gift#')).toBe(true);
    expect(keys.leaderboardEntry('s', 0, 'a#b').sk).toBe('U#a%23b');
  });
});

describe('the catch-up log partitions', () => {
  it('spread batches of any steady size over every partition, none with more than 1.5 times its share', () => {
    const batches = 400;
    const crowded: Array<{ size: number; most: number }> = [];
    for (let size = 1; size <= 100; size += 1) {
      const counts = new Array<number>(EVENT_LOG_PARTITIONS).fill(0);
      for (let batch = 1; batch <= batches; batch += 1) {
        const partition = eventLogPartition(batch * size);
        counts[partition] = (counts[partition] ?? 0) + 1;
      }
      const most = Math.max(...counts);
      if (most > (1.5 * batches) / EVENT_LOG_PARTITIONS) crowded.push({ size, most });
    }
    expect(crowded).toEqual([]);
  });
});

import fc from 'fast-check';
import {
  buildFrame,
  MAX_FRAME_BYTES,
  summarize,
  type FrameMessage,
  type GiftSummary,
} from '../../shared/usecases/frames';
import type { GiftEvent } from '../../shared/usecases/streams';

/*
 * One broadcast frame per window (docs/API.md, WebSocket): never over 32 KB, every seq covered by
 * exactly one single gift or one summary, in order, and events that fit never summarized.
 */

const gift = (seq: number, overrides: Partial<GiftEvent> = {}): GiftEvent => ({
  type: 'gift',
  streamId: 'st_01M8PBJ3KRQ4PR564EXPJNKRYP',
  seq,
  giftTxId: `gift_01M8PBJ3KRQ4PR564EXPJN${String(seq).padStart(6, '0')}`,
  fromUserId: `viewer-${seq % 7}`,
  giftId: seq % 3 === 0 ? 'lion' : 'rose',
  quantity: 1 + (seq % 5),
  coins: (1 + (seq % 5)) * (seq % 3 === 0 ? 1000 : 1),
  at: '2026-11-30T13:00:00.000Z',
  ...overrides,
});

const messagesOf = (body: unknown): FrameMessage[] => {
  const frame = body as { type: string; events?: FrameMessage[] };
  return frame.type === 'batch' ? (frame.events ?? []) : [frame as FrameMessage];
};

function coveredSeqs(messages: FrameMessage[]): number[] {
  return messages.flatMap((message) => {
    if (message.type === 'gift') return [message.seq];
    if (message.type === 'giftSummary')
      return Array.from({ length: message.toSeq - message.fromSeq + 1 }, (_, index) => message.fromSeq + index);
    return [];
  });
}

describe('buildFrame', () => {
  it('sends a lone gift as itself, and a window that fits as one batch with no summary', () => {
    const one = buildFrame('st', [gift(1)], {});
    expect(one?.body).toEqual(gift(1));
    const room = { type: 'room' as const, streamId: 'st', viewers: 3, giftCoins: 10 };
    const few = buildFrame('st', [gift(1), gift(2)], { room, ended: true });
    expect(few?.body).toEqual({
      type: 'batch',
      events: [gift(1), gift(2), room, { type: 'streamEnded', streamId: 'st' }],
    });
    expect(few?.summarized).toBe(0);
    expect(buildFrame('st', [], {})).toBeUndefined();
  });

  it('at any window size: at most 32 KB, every seq exactly once and in order, singles first, and no summary when everything fits', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1_500 }), fc.boolean(), fc.boolean(), (count, withRoom, ended) => {
        const events = Array.from({ length: count }, (_, index) => gift(index + 1));
        const room = withRoom
          ? { type: 'room' as const, streamId: 'st_01M8PBJ3KRQ4PR564EXPJNKRYP', viewers: 123_456, giftCoins: 9_876_543 }
          : undefined;
        const frame = buildFrame('st_01M8PBJ3KRQ4PR564EXPJNKRYP', events, { ...(room && { room }), ended });
        if (!frame) throw new Error('no frame');
        expect(frame.bytes).toBe(Buffer.byteLength(JSON.stringify(frame.body)));
        expect(frame.bytes).toBeLessThanOrEqual(MAX_FRAME_BYTES);
        const messages = messagesOf(frame.body);
        expect(coveredSeqs(messages)).toEqual(events.map((event) => event.seq));
        const summaries = messages.filter((message): message is GiftSummary => message.type === 'giftSummary');
        expect(summaries.length).toBeLessThanOrEqual(1);
        expect(frame.singles + frame.summarized).toBe(count);
        // Events that fit are never summarized.
        const everything = JSON.stringify({
          type: 'batch',
          events: [...events, ...(room ? [room] : []), ...(ended ? [{ type: 'streamEnded' }] : [])],
        });
        if (Buffer.byteLength(everything) <= MAX_FRAME_BYTES) expect(summaries).toEqual([]);
        if (ended)
          expect(messages[messages.length - 1]).toEqual({
            type: 'streamEnded',
            streamId: 'st_01M8PBJ3KRQ4PR564EXPJNKRYP',
          });
      }),
      { numRuns: 60 },
    );
  });

  it('summarizes the rest by gift type, with its coins and distinct senders', () => {
    const events = [
      gift(4, { giftId: 'rose', quantity: 2, coins: 2, fromUserId: 'a' }),
      gift(5, { giftId: 'lion', quantity: 1, coins: 1000, fromUserId: 'b' }),
      gift(6, { giftId: 'rose', quantity: 3, coins: 3, fromUserId: 'a' }),
    ];
    expect(summarize('st', events)).toEqual({
      type: 'giftSummary',
      streamId: 'st',
      fromSeq: 4,
      toSeq: 6,
      gifts: [
        { giftId: 'lion', quantity: 1, coins: 1000 },
        { giftId: 'rose', quantity: 5, coins: 5 },
      ],
      senders: 2,
    });
  });
});

import { UnauthorizedError } from '../../shared/domain/errors';
import { authorizeEventApi } from '../../shared/events/authorize';
import {
  channelSegmentForStream,
  isValidChannelPath,
  MAX_CHANNEL_SEGMENT_LENGTH,
  MAX_CHANNEL_SEGMENTS,
  roomChannel,
  streamIdFromChannel,
} from '../../shared/events/channels';
import {
  batchesForPublish,
  EventTooLargeError,
  MAX_EVENT_BYTES,
  MAX_EVENTS_PER_PUBLISH,
} from '../../shared/events/publisher';
import { frameSpacingMs } from '../../shared/usecases/broadcast';
import { EVENT_API_DELIVERIES_PER_SECOND_PER_ROOM, publishToRoomChannel } from '../../shared/usecases/room-channel';
import type { StreamRecord } from '../../shared/usecases/streams';

describe('room channel names', () => {
  test('a generated stream id maps to one segment of letters, digits and -, and back', () => {
    const streamId = 'st_01JQ7Z8K9M2N3P4Q5R6S7T8V9W';
    expect(roomChannel(streamId)).toBe('/rooms/st-5f01JQ7Z8K9M2N3P4Q5R6S7T8V9W');
    expect(streamIdFromChannel('/rooms/st-5f01JQ7Z8K9M2N3P4Q5R6S7T8V9W')).toBe(streamId);
  });

  test('every character a stream id may hold round-trips, and distinct ids get distinct channels', () => {
    const ids = ['a-b', 'a_b', 'a:b', 'a.b', 'a--b', 'a-2db', 'A', 'a'];
    const channels = ids.map((id) => roomChannel(id));
    expect(new Set(channels).size).toBe(ids.length);
    for (const [index, id] of ids.entries()) {
      expect(channels[index]).toMatch(/^\/rooms\/[A-Za-z0-9-]+$/);
      expect(streamIdFromChannel(channels[index] as string)).toBe(id);
    }
  });

  test('a segment of exactly 50 characters is a channel; 51 is none', () => {
    const fits = 'a'.repeat(MAX_CHANNEL_SEGMENT_LENGTH);
    expect(channelSegmentForStream(fits)).toBe(fits);
    expect(channelSegmentForStream(`${fits}b`)).toBeUndefined();
    // Escapes count: 16 underscores are 48 characters, 17 are 51.
    expect(channelSegmentForStream('_'.repeat(16))).toHaveLength(48);
    expect(channelSegmentForStream('_'.repeat(17))).toBeUndefined();
  });

  test('paths that are not a room are no stream: other namespaces, wildcards, extra segments, non-canonical escapes', () => {
    for (const path of [
      '/default/st-5fX',
      '/rooms/*',
      '/rooms/a/b',
      '/rooms/',
      '/rooms/a-4',
      '/rooms/-41',
      '/rooms/a_b',
    ])
      expect(streamIdFromChannel(path)).toBeUndefined();
  });

  test('channel paths: at most 5 segments, a wildcard only last and only where allowed', () => {
    const five = `/${Array.from({ length: MAX_CHANNEL_SEGMENTS }, () => 'a').join('/')}`;
    expect(isValidChannelPath(five, { wildcard: false })).toBe(true);
    expect(isValidChannelPath(`${five}/a`, { wildcard: false })).toBe(false);
    expect(isValidChannelPath('/rooms/*', { wildcard: true })).toBe(true);
    expect(isValidChannelPath('/rooms/*', { wildcard: false })).toBe(false);
    expect(isValidChannelPath('/rooms/*/a', { wildcard: true })).toBe(false);
    expect(isValidChannelPath('rooms/a', { wildcard: false })).toBe(false);
  });
});

describe('publish batching at the Event API quotas', () => {
  test('5 events are one request, 6 are two, in order', () => {
    const five = Array.from({ length: MAX_EVENTS_PER_PUBLISH }, (_, index) => JSON.stringify({ index }));
    expect(batchesForPublish(five)).toEqual([five]);
    const six = [...five, JSON.stringify({ index: 5 })];
    expect(batchesForPublish(six)).toEqual([five, [six[5]]]);
  });

  test('an event of exactly 240 KB goes; one byte more is refused before any request', () => {
    const exact = JSON.stringify('x'.repeat(MAX_EVENT_BYTES - 2));
    expect(Buffer.byteLength(exact)).toBe(MAX_EVENT_BYTES);
    expect(batchesForPublish([exact])).toEqual([[exact]]);
    const over = JSON.stringify('x'.repeat(MAX_EVENT_BYTES - 1));
    expect(() => batchesForPublish([JSON.stringify(1), over])).toThrow(EventTooLargeError);
  });

  test('the frame rate adapts to the room: 2 frames/s up to 50,000 viewers, 1/s at 100,000, 0.5/s at 200,000', () => {
    const spacing = (viewers: number) => frameSpacingMs(500, viewers, EVENT_API_DELIVERIES_PER_SECOND_PER_ROOM);
    expect(spacing(50_000)).toBe(500);
    expect(spacing(50_001)).toBe(501);
    expect(spacing(100_000)).toBe(1_000);
    expect(spacing(200_000)).toBe(2_000);
    // Deliveries a second stay within the room's budget at any size.
    for (const viewers of [1, 50_000, 100_000, 1_000_000])
      expect((viewers * 1000) / spacing(viewers)).toBeLessThanOrEqual(EVENT_API_DELIVERIES_PER_SECOND_PER_ROOM);
  });

  test('a failed publish is swallowed (subscribers catch up), never thrown into the broadcast', async () => {
    const publisher = { publishFrames: jest.fn().mockRejectedValue(new Error('503')) };
    await expect(
      publishToRoomChannel({ publisher, deliveriesPerSecond: 1 }, 'st_x', { type: 'room' }),
    ).resolves.toBeUndefined();
    expect(publisher.publishFrames).toHaveBeenCalledWith('st_x', [{ type: 'room' }]);
  });
});

describe('the Event API authorizer', () => {
  const live = { streamId: 'st_live', status: 'live' } as StreamRecord;
  const ended = { streamId: 'st_ended', status: 'ended' } as StreamRecord;
  const deps = {
    verifyToken: async (token: string) => {
      if (token !== 'good') throw new UnauthorizedError('expired');
      return { sub: 'alice', exp: 1 };
    },
    readStream: async (streamId: string) => [live, ended].find((stream) => stream.streamId === streamId),
  };
  const ask = (operation: string, token?: string, channel?: string) =>
    authorizeEventApi(deps, { authorizationToken: token, requestContext: { operation, ...(channel && { channel }) } });

  test('connect needs a valid token; the answer is never cached', async () => {
    expect((await ask('EVENT_CONNECT', 'good')).result).toEqual({
      isAuthorized: true,
      ttlOverride: 0,
      handlerContext: { userId: 'alice' },
    });
    expect((await ask('EVENT_CONNECT', 'Bearer good')).result.isAuthorized).toBe(true);
    expect((await ask('EVENT_CONNECT', 'expired')).result).toEqual({ isAuthorized: false, ttlOverride: 0 });
    expect((await ask('EVENT_CONNECT')).result.isAuthorized).toBe(false);
  });

  test('subscribe: only the channel of a live stream', async () => {
    expect((await ask('EVENT_SUBSCRIBE', 'good', roomChannel('st_live'))).result.isAuthorized).toBe(true);
    expect((await ask('EVENT_SUBSCRIBE', 'good', roomChannel('st_ended'))).result.isAuthorized).toBe(false);
    expect((await ask('EVENT_SUBSCRIBE', 'good', roomChannel('st_unknown'))).result.isAuthorized).toBe(false);
    expect((await ask('EVENT_SUBSCRIBE', 'good', '/rooms/*')).result.isAuthorized).toBe(false);
    expect((await ask('EVENT_SUBSCRIBE', 'good', '/other/st-5flive')).result.isAuthorized).toBe(false);
    expect((await ask('EVENT_SUBSCRIBE', 'expired', roomChannel('st_live'))).result.isAuthorized).toBe(false);
  });

  test('publish is never allowed to a client token; malformed events are refused', async () => {
    expect((await ask('EVENT_PUBLISH', 'good', roomChannel('st_live'))).result.isAuthorized).toBe(false);
    expect((await authorizeEventApi(deps, { nonsense: true })).result.isAuthorized).toBe(false);
  });
});

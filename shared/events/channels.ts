/**
 * Room channels of the AppSync Event API (docs/API.md, "Room channels"). AppSync allows only
 * letters, digits and `-` in namespace and channel segments, at most 50 characters each, while
 * stream ids may also hold `_`, `:` and `.`. So a stream id is mapped one to one: letters and
 * digits stay, every other character becomes `-` and its two hex digits (`_` -> `-5f`,
 * `-` -> `-2d`). `st_01J...` is channel `/rooms/st-5f01J...`. The mapping is reversible, so the
 * subscribe authorizer finds the stream from the channel alone.
 */

/** The channel namespace of the rooms' broadcast (CDK and the local stand-in create it). */
export const ROOMS_NAMESPACE = 'rooms';
/** AppSync Events: a channel segment holds at most 50 characters (letters, digits, `-`). */
export const MAX_CHANNEL_SEGMENT_LENGTH = 50;
/** AppSync Events: a channel path has at most 5 segments, the namespace included. */
export const MAX_CHANNEL_SEGMENTS = 5;

const SEGMENT = /^[A-Za-z0-9-]+$/;
const ESCAPE_WIDTH = 3;

/** One stream id as one channel segment; undefined when the id does not fit in a segment. */
export function channelSegmentForStream(streamId: string): string | undefined {
  let segment = '';
  for (const character of streamId) {
    const code = character.codePointAt(0) ?? 0;
    // Stream ids are ASCII (docs/API.md); anything wider has no two-digit escape.
    if (code > 0xff) return undefined;
    segment += /[A-Za-z0-9]/.test(character) ? character : `-${code.toString(16).padStart(2, '0')}`;
  }
  if (segment.length === 0 || segment.length > MAX_CHANNEL_SEGMENT_LENGTH) return undefined;
  return segment;
}

/** The room's channel path, `/rooms/<segment>`; undefined when the stream id maps to no channel. */
export function roomChannel(streamId: string): string | undefined {
  const segment = channelSegmentForStream(streamId);
  return segment === undefined ? undefined : `/${ROOMS_NAMESPACE}/${segment}`;
}

/** The stream id behind a room channel path; undefined for any other path (wildcards included). */
export function streamIdFromChannel(channel: string): string | undefined {
  const segments = channel.replace(/^\//, '').split('/');
  if (segments.length !== 2 || segments[0] !== ROOMS_NAMESPACE) return undefined;
  const segment = segments[1] ?? '';
  if (!SEGMENT.test(segment) || segment.length > MAX_CHANNEL_SEGMENT_LENGTH) return undefined;
  let streamId = '';
  for (let index = 0; index < segment.length; ) {
    const character = segment[index] ?? '';
    if (character !== '-') {
      streamId += character;
      index += 1;
      continue;
    }
    const hex = segment.slice(index + 1, index + ESCAPE_WIDTH);
    if (!/^[0-9a-f]{2}$/.test(hex)) return undefined;
    streamId += String.fromCharCode(Number.parseInt(hex, 16));
    index += ESCAPE_WIDTH;
  }
  // Only the canonical spelling is a room: `-41` for `A` would be a second name for one stream.
  return channelSegmentForStream(streamId) === segment ? streamId : undefined;
}

/** True when every segment of the path is one AppSync accepts (publish and subscribe both check it). */
export function isValidChannelPath(channel: string, options: { wildcard: boolean }): boolean {
  if (!channel.startsWith('/')) return false;
  const segments = channel.slice(1).split('/');
  if (segments.length < 2 || segments.length > MAX_CHANNEL_SEGMENTS) return false;
  return segments.every((segment, index) => {
    if (options.wildcard && segment === '*' && index === segments.length - 1) return true;
    return SEGMENT.test(segment) && segment.length <= MAX_CHANNEL_SEGMENT_LENGTH;
  });
}

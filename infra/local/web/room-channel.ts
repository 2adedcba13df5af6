import { Amplify } from 'aws-amplify';
import { events } from 'aws-amplify/data';
import { roomChannel } from '../../../shared/events/channels';

/**
 * The live room's broadcast through AWS AppSync Events, with AWS's own client (aws-amplify's
 * `events`): the page subscribes to the room's channel (`/rooms/<mapped stream id>`) with the
 * viewer's token (Lambda authorization) and hands every frame to the same code that reads the
 * WebSocket API's frames. The page still keeps the WebSocket API for what is personal (sending
 * gifts, acks, wallet pushes); frames that arrive on both are applied once, by seq.
 */

let configuredFor: string | undefined;

/** The Event API's HTTP endpoint from the page's meta tag, or undefined when the stack serves none. */
export function eventsEndpoint(): string | undefined {
  const configured = document.querySelector<HTMLMetaElement>('meta[name="events-url"]')?.content ?? '';
  return /^https:\/\//.test(configured) ? configured : undefined;
}

export interface RoomSubscription {
  close(): void;
}

/**
 * Subscribes to the room's channel; resolves once AppSync (or the stand-in) answered
 * `subscribe_success`, rejects on `subscribe_error` (an ended room, an expired token).
 */
export async function subscribeToRoom(
  streamId: string,
  token: string,
  onFrame: (frame: unknown) => void,
): Promise<RoomSubscription> {
  const endpoint = eventsEndpoint();
  const channelPath = roomChannel(streamId);
  if (!endpoint || !channelPath) throw new Error('no Event API channel for this room');
  if (configuredFor !== endpoint) {
    Amplify.configure({ API: { Events: { endpoint, region: 'us-east-1', defaultAuthMode: 'lambda' } } });
    configuredFor = endpoint;
  }
  const channel = await events.connect(channelPath, { authMode: 'lambda', authToken: token });
  const subscription = channel.subscribe({
    next: (data: { event?: unknown }) => onFrame(data.event),
    error: () => undefined,
  });
  try {
    await (subscription as unknown as { ready: Promise<unknown> }).ready;
  } catch (error) {
    void channel.close();
    throw error;
  }
  return {
    close: () => {
      subscription.unsubscribe();
      void channel.close();
    },
  };
}

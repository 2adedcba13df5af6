import type { RoomChannelPublisher } from '../events/publisher';
import { logger } from '../logger';
import { metrics } from '../observability/metrics';

/**
 * The broadcaster's second path (docs/DESIGN.md, "Rooms beyond @connections"): each frame is
 * published once to the room's Event API channel, whatever the number of subscribers.
 */

/**
 * Event API deliveries a second one room may cause. AppSync bills 1 USD per million operations
 * and every delivered message is one: 100,000 a second is 360 USD an hour, under the 400 USD/h
 * goal for a 100,000-viewer room with room for the publishes and connection minutes. A room
 * whose viewers x 2 frames/s would pass it gets fewer frames a second (100,000 viewers: 1/s).
 */
export const EVENT_API_DELIVERIES_PER_SECOND_PER_ROOM = 100_000;

export interface RoomChannelDeps {
  publisher: RoomChannelPublisher;
  deliveriesPerSecond: number;
}

/**
 * Publishes one frame. A failed publish is counted and logged, never retried into a duplicate
 * and never thrown: the gifts are already numbered and stored, so a subscriber that missed the
 * frame sees the seq jump on the next one and catches up from the events route (docs/API.md).
 */
export async function publishToRoomChannel(deps: RoomChannelDeps, streamId: string, body: unknown): Promise<void> {
  try {
    const { requests } = await deps.publisher.publishFrames(streamId, [body]);
    if (requests > 0) metrics.count('EventApiPublishes', requests);
  } catch (error) {
    metrics.count('EventApiPublishesFailed');
    logger.warn('event api publish failed; subscribers will catch up', {
      streamId,
      error: error instanceof Error ? error.message : String(error),
    });
  }
}

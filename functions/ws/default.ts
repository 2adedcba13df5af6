import * as z from 'zod';
import { ValidationError } from '../../shared/domain/errors';
import { wsRoute } from '../../shared/ws/route';

/** $default: a frame that is not JSON or names no known action; the connection stays open. */
export const handler = wsRoute({
  // Costs no database call: a read against the caller's limit.
  requestClass: 'read',
  body: z.unknown(),
  handle: async () => {
    throw new ValidationError('Unknown action. Known actions: sendGift, join, ping.');
  },
});

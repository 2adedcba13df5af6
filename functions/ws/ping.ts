import * as z from 'zod';
import { wsRoute } from '../../shared/ws/route';

/** `ping` keeps the connection inside API Gateway's 10 minute idle limit. */
export const handler = wsRoute({
  // Costs no database call: a read against the caller's limit.
  requestClass: 'read',
  body: z.object({ action: z.literal('ping') }),
  handle: async () => ({ type: 'pong' }),
});

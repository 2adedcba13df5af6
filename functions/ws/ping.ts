import * as z from 'zod';
import { wsRoute } from '../../shared/ws/route';

/** `ping` keeps the connection inside API Gateway's 10 minute idle limit. */
export const handler = wsRoute({
  body: z.object({ action: z.literal('ping') }),
  handle: async () => ({ type: 'pong' }),
});

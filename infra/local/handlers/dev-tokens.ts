import * as z from 'zod';
import { signLocalToken } from '../issuer';
import { GROUP_NAME } from '../../../shared/auth/operators';
import { NotFoundError } from '../../../shared/domain/errors';
import { devTokenAnswer } from '../../../shared/http/answers';
import { httpRoute } from '../../../shared/http/route';
import { declaredHttpRoute } from '../../routes';

/**
 * POST /dev/tokens (local stack only): a token from the local issuer for any demo user. The
 * route table marks it local-only, so it never reaches AWS; it also refuses to run outside
 * the local stack.
 */
const environment = z.object({
  LOCAL_STACK: z.literal('true'),
  LOCAL_ISSUER_KEY_FILE: z.string().min(1),
  JWT_ISSUER: z.string().min(1),
});

const body = z.object({
  sub: z
    .string()
    .min(1)
    .max(128)
    .regex(/^[A-Za-z0-9_\-.@]+$/, 'letters, digits and _-.@ only'),
  birthdate: z.iso.date().optional(),
  country: z
    .string()
    .regex(/^[A-Za-z]{2}$/, 'an ISO 3166-1 alpha-2 code')
    .optional(),
  parentalConsent: z.boolean().optional(),
  /** Cognito user-pool groups, signed into `cognito:groups`: `["operators"]` makes an operator. */
  groups: z.array(z.string().regex(GROUP_NAME, '1-128 characters, no blanks or brackets')).max(10).optional(),
});

export const handler = httpRoute(declaredHttpRoute('DevTokens'), {
  body,
  response: { status: 200, schema: devTokenAnswer },
  handle: async ({ body: claims }) => {
    const env = environment.safeParse(process.env);
    if (!env.success) throw new NotFoundError('No such route.');
    const token = await signLocalToken(env.data.LOCAL_ISSUER_KEY_FILE, env.data.JWT_ISSUER, claims);
    return { status: 200, body: { token } };
  },
});

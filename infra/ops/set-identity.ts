import {
  AdminUpdateUserAttributesCommand,
  CognitoIdentityProviderClient,
  type AttributeType,
} from '@aws-sdk/client-cognito-identity-provider';
import { parseArgs } from 'node:util';
import * as z from 'zod';
import { COGNITO_CLAIM_NAMES } from '../stacks/stateful-stack';

/**
 * `npm run set-identity -- --user-pool-id <id> --user <email or sub> --birthdate 1990-04-01 --country DE [--parental-consent false]`
 *
 * The operator's way to set the attributes the age and region rules rely on (docs/API.md,
 * Conventions): a self-signed-up user has none, so every new user is AGE_RESTRICTED until these
 * are set. The app client cannot write them; this uses the Cognito admin API with the operator's
 * own AWS credentials (cognito-idp:AdminUpdateUserAttributes on the pool). Every value is
 * validated before anything is sent; the change takes effect at the user's next ID token (at most
 * an hour: ID_TOKEN_VALIDITY).
 */
export const MIN_BIRTH_YEAR = 1900;

const isoDate = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, 'YYYY-MM-DD')
  .refine((value) => {
    const date = new Date(`${value}T00:00:00Z`);
    return !Number.isNaN(date.getTime()) && date.toISOString().slice(0, 10) === value;
  }, 'not a calendar date')
  .refine(
    (value) => Number(value.slice(0, 4)) >= MIN_BIRTH_YEAR && new Date(`${value}T00:00:00Z`).getTime() <= Date.now(),
    `between ${MIN_BIRTH_YEAR} and today`,
  );

export const identityArguments = z
  .object({
    userPoolId: z.string().regex(/^[\w-]+_[0-9a-zA-Z]+$/, 'a Cognito user pool id, e.g. eu-west-1_AbC123'),
    user: z.string().min(1).max(128),
    birthdate: isoDate.optional(),
    country: z
      .string()
      .regex(/^[A-Za-z]{2}$/, 'an ISO 3166-1 alpha-2 code')
      .transform((value) => value.toUpperCase())
      .optional(),
    parentalConsent: z.enum(['true', 'false']).optional(),
    region: z.string().min(1).optional(),
  })
  .refine((args) => args.birthdate !== undefined || args.country !== undefined || args.parentalConsent !== undefined, {
    message: 'give at least one of --birthdate, --country, --parental-consent',
  });
export type IdentityArguments = z.infer<typeof identityArguments>;

/** The Cognito attributes for the arguments, under the names the stack's user pool uses. */
export function identityAttributes(args: IdentityArguments): AttributeType[] {
  return [
    ...(args.birthdate !== undefined ? [{ Name: COGNITO_CLAIM_NAMES.CLAIM_BIRTHDATE, Value: args.birthdate }] : []),
    ...(args.country !== undefined ? [{ Name: COGNITO_CLAIM_NAMES.CLAIM_COUNTRY, Value: args.country }] : []),
    ...(args.parentalConsent !== undefined
      ? [{ Name: COGNITO_CLAIM_NAMES.CLAIM_PARENTAL_CONSENT, Value: args.parentalConsent }]
      : []),
  ];
}

export function parseIdentityArguments(argv: string[]): IdentityArguments {
  const { values } = parseArgs({
    args: argv,
    options: {
      'user-pool-id': { type: 'string' },
      user: { type: 'string' },
      birthdate: { type: 'string' },
      country: { type: 'string' },
      'parental-consent': { type: 'string' },
      region: { type: 'string' },
    },
    strict: true,
  });
  const parsed = identityArguments.safeParse({
    userPoolId: values['user-pool-id'] ?? process.env.USER_POOL_ID,
    user: values.user,
    birthdate: values.birthdate,
    country: values.country,
    parentalConsent: values['parental-consent'],
    region: values.region,
  });
  if (!parsed.success)
    throw new Error(
      parsed.error.issues.map((issue) => `${issue.path.join('.') || 'arguments'}: ${issue.message}`).join('; '),
    );
  return parsed.data;
}

async function main(): Promise<void> {
  const args = parseIdentityArguments(process.argv.slice(2));
  const region = args.region ?? args.userPoolId.split('_')[0];
  const client = new CognitoIdentityProviderClient({ ...(region && { region }) });
  const attributes = identityAttributes(args);
  await client.send(
    new AdminUpdateUserAttributesCommand({
      UserPoolId: args.userPoolId,
      Username: args.user,
      UserAttributes: attributes,
    }),
  );
  process.stdout.write(
    `Set ${attributes.map((attribute) => `${attribute.Name}=${attribute.Value}`).join(', ')} on ${args.user}. It takes effect with the user's next ID token.\n`,
  );
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`set-identity: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}

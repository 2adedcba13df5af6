import { ledgerDeps } from '../../shared/adapters/clients';
import { StripeConnectPayouts } from '../../shared/adapters/stripe-connect';
import { payoutsConfig } from '../../shared/config';
import { payoutAccountCreatedAnswer } from '../../shared/http/answers';
import { httpRoute } from '../../shared/http/route';
import { createPayoutAccount } from '../../shared/usecases/payout-account';
import { declaredHttpRoute } from '../../infra/routes';

let connect: StripeConnectPayouts | undefined;
function connectPayouts(): StripeConnectPayouts {
  if (!connect) {
    const config = payoutsConfig();
    connect = new StripeConnectPayouts(undefined, {
      ...(config.PAYOUT_ONBOARDING_RETURN_URL !== undefined && { returnUrl: config.PAYOUT_ONBOARDING_RETURN_URL }),
      ...(config.PAYOUT_ONBOARDING_REFRESH_URL !== undefined && { refreshUrl: config.PAYOUT_ONBOARDING_REFRESH_URL }),
    });
  }
  return connect;
}

/** POST /v1/creator/payout-account (no body): the creator's Connect account and a fresh onboarding link. */
export const handler = httpRoute(declaredHttpRoute('PayoutAccountCreate'), {
  response: { status: 201, schema: payoutAccountCreatedAnswer },
  handle: async ({ caller }) => ({
    status: 201,
    body: await createPayoutAccount({ ...ledgerDeps(), connect: connectPayouts() }, caller),
  }),
});

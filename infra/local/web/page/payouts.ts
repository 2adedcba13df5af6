/** The creator's payouts: the linked account, the estimate, requests and their status. */
import type * as z from 'zod/mini';
import { amountOf, byId, count, element } from '../kit';
import { ApiError } from './words';
import {
  CENTS_PER_DIAMOND_DENOMINATOR,
  MIN_PAYOUT_DIAMONDS_HINT,
  ONBOARDING_POLL_DEADLINE_MS,
  ONBOARDING_POLL_INTERVAL_MS,
  PAYOUT_POLL_DEADLINE_MS,
  PAYOUT_POLL_INTERVAL_MS,
} from './limits';
import { type Payout, payoutAccountSchema, payoutSchema, payoutsSchema } from './answers';
import { api } from './api';
import { formatMoney, newKey, sleep, timeOf } from './format';
import { notify } from './notices';
import { refreshWallet } from './wallet';
import { state } from './state';

function renderPayoutAccount(account: 'none' | 'onboarding' | 'enabled'): void {
  const node = byId('payout-account-status');
  node.dataset.state = account;
  node.textContent = {
    none: 'No payout account linked yet.',
    onboarding: 'Finish onboarding in the new tab. This page notices when payouts are enabled.',
    enabled: '✓ Payouts enabled: your payout account is linked.',
  }[account];
  byId('payout-link').hidden = account === 'enabled';
  if (account === 'enabled') byId('payout-onboarding-link').hidden = true;
}

export async function refreshPayoutAccount(): Promise<boolean> {
  try {
    const account = await api('GET', '/v1/creator/payout-account', payoutAccountSchema);
    renderPayoutAccount(account.payoutsEnabled ? 'enabled' : 'onboarding');
    return account.payoutsEnabled;
  } catch (error) {
    if (error instanceof ApiError && error.code === 'NOT_FOUND') {
      renderPayoutAccount('none');
      return false;
    }
    throw error;
  }
}

export async function linkPayoutAccount(): Promise<void> {
  // Opened now, inside the click, so that popup blockers allow it; it is pointed at the
  // onboarding link once the API has made one.
  const popup = window.open('', 'payout-onboarding');
  let account: z.infer<typeof payoutAccountSchema>;
  try {
    account = await api('POST', '/v1/creator/payout-account', payoutAccountSchema);
  } catch (error) {
    popup?.close();
    throw error;
  }
  if (account.payoutsEnabled || !account.onboardingUrl) {
    popup?.close();
    renderPayoutAccount(account.payoutsEnabled ? 'enabled' : 'onboarding');
    return;
  }
  const link = byId<HTMLAnchorElement>('payout-onboarding-link');
  link.href = account.onboardingUrl;
  link.hidden = false;
  if (popup) {
    popup.opener = null;
    popup.location.href = account.onboardingUrl;
  }
  renderPayoutAccount('onboarding');
  void pollPayoutAccount();
}

async function pollPayoutAccount(): Promise<void> {
  if (state.payoutAccountPolling) return;
  state.payoutAccountPolling = true;
  const epoch = state.sessionEpoch;
  const deadline = Date.now() + ONBOARDING_POLL_DEADLINE_MS;
  try {
    while (epoch === state.sessionEpoch && Date.now() < deadline) {
      if (await refreshPayoutAccount().catch(() => false)) {
        notify('Payouts enabled.');
        return;
      }
      await sleep(ONBOARDING_POLL_INTERVAL_MS);
    }
  } finally {
    state.payoutAccountPolling = false;
  }
}

export function renderPayoutEstimate(): void {
  const input = byId<HTMLInputElement>('payout-diamonds');
  const diamonds = Number(input.value);
  const available = state.wallet?.diamonds ?? 0;
  input.placeholder = String(Math.max(MIN_PAYOUT_DIAMONDS_HINT, 0));
  const estimate =
    Number.isInteger(diamonds) && diamonds > 0 && diamonds % CENTS_PER_DIAMOND_DENOMINATOR === 0
      ? ` ${amountOf(diamonds, 'diamond')} pay ${formatMoney({ amount: diamonds / CENTS_PER_DIAMOND_DENOMINATOR, currency: 'USD' })}.`
      : '';
  byId('payout-estimate').textContent =
    `${amountOf(available, 'diamond')} available.${estimate} Payouts start at ${amountOf(MIN_PAYOUT_DIAMONDS_HINT, 'diamond')}; 1 diamond pays 0.5 US cents.`;
}

function payoutItem(payout: Payout): HTMLLIElement {
  const words: Record<string, string> = {
    requested: 'requested',
    processing: 'processing…',
    paid: 'paid ✓',
    failed: 'failed: diamonds returned',
  };
  return element(
    'li',
    { 'data-testid': 'payout-item', 'data-status': payout.status, 'data-payout-id': payout.payoutId },
    element('span', {}, `💎 ${count(payout.diamonds)}${payout.amount ? ` → ${formatMoney(payout.amount)}` : ''}`),
    element('span', { class: `status ${payout.status}` }, words[payout.status] ?? payout.status),
    element('time', payout.createdAt ? { datetime: payout.createdAt } : {}, timeOf(payout.createdAt)),
  );
}

/** The statuses last shown, so that a payout settling while we watch is announced once. */
export const shownPayoutStatus = new Map<string, string>();

export async function refreshPayouts(): Promise<boolean> {
  const { items } = await api('GET', '/v1/payouts', payoutsSchema);
  byId('payouts-list').replaceChildren(...items.map(payoutItem));
  for (const payout of items) {
    const before = shownPayoutStatus.get(payout.payoutId);
    if (before !== undefined && before !== payout.status && (payout.status === 'paid' || payout.status === 'failed')) {
      const amount = payout.amount ? ` (${formatMoney(payout.amount)})` : '';
      notify(
        payout.status === 'paid'
          ? `Payout of ${amountOf(payout.diamonds, 'diamond')} paid${amount}.`
          : `A payout failed; its ${amountOf(payout.diamonds, 'diamond')} are back in your balance.`,
      );
    }
    shownPayoutStatus.set(payout.payoutId, payout.status);
  }
  return items.some((payout) => payout.status === 'requested' || payout.status === 'processing');
}

export async function requestPayout(): Promise<void> {
  const diamonds = Number(byId<HTMLInputElement>('payout-diamonds').value);
  if (!Number.isInteger(diamonds) || diamonds < 1)
    throw new ApiError('VALIDATION_FAILED', 'diamonds', 400, [
      { path: 'diamonds', message: 'a whole number of diamonds' },
    ]);
  if (state.payoutRequest?.diamonds !== diamonds) state.payoutRequest = { key: newKey('payout'), diamonds };
  const payout = await api('POST', '/v1/payouts', payoutSchema, {
    body: { diamonds },
    idempotencyKey: state.payoutRequest.key,
  });
  state.payoutRequest = undefined;
  notify(
    `Payout of ${amountOf(payout.diamonds, 'diamond')} requested${payout.amount ? ` (${formatMoney(payout.amount)})` : ''}.`,
  );
  await Promise.all([refreshWallet(), refreshPayouts()]);
  void pollPayouts();
}

async function pollPayouts(): Promise<void> {
  const polling = state.payoutsPollingUntil > Date.now();
  state.payoutsPollingUntil = Date.now() + PAYOUT_POLL_DEADLINE_MS;
  if (polling) return;
  const epoch = state.sessionEpoch;
  while (epoch === state.sessionEpoch && Date.now() < state.payoutsPollingUntil) {
    await sleep(PAYOUT_POLL_INTERVAL_MS);
    if (epoch !== state.sessionEpoch) break;
    const unsettled = await refreshPayouts().catch(() => true);
    if (!unsettled) {
      await refreshWallet().catch(() => undefined);
      break;
    }
  }
  state.payoutsPollingUntil = 0;
}

/** Buying coins: the price list with its offers, the checkout dialog and its one idempotency key, redirect payments. */
import * as z from 'zod/mini';
import { amountOf, byId, count, element } from '../kit';
import { ApiError, plainWords } from './words';
import { type CoinPackage, type Money, packagesSchema, rechargeCreatedSchema, rechargeSchema } from './answers';
import { RECHARGE_POLL_DEADLINE_MS, RECHARGE_POLL_INTERVAL_MS } from './limits';
import { api } from './api';
import { formatMoney, newKey, sleep } from './format';
import { notify } from './notices';
import { refreshWallet } from './wallet';
import { renderSpendable } from './streams';
import { state } from './state';

/** An offer on a package: its price or bonus, and when it ends (in the person's time zone). */
function offerBadge(pack: CoinPackage): HTMLElement {
  const offer = pack.offer;
  if (!offer) return element('span', {});
  const ends = new Date(offer.endsAt).toLocaleString('en', { dateStyle: 'medium', timeStyle: 'short' });
  const what =
    offer.bonusCoins > 0
      ? `+${count(offer.bonusCoins)} bonus ${offer.bonusCoins === 1 ? 'coin' : 'coins'}`
      : `now ${formatMoney(offer.price)}`;
  const first = offer.firstRechargeOnly ? ' · first recharge' : '';
  return element(
    'span',
    { class: 'offer', 'data-testid': `package-offer-${pack.id}`, 'data-ends-at': offer.endsAt },
    `🎁 ${what}${first} · ends ${ends}`,
  );
}

export async function loadCatalog(): Promise<void> {
  if (!state.session) return;
  const list = byId('package-list');
  try {
    state.priceList = await api(
      'GET',
      `/v1/packages?country=${encodeURIComponent(state.session.country)}`,
      packagesSchema,
    );
  } catch (error) {
    state.priceList = undefined;
    list.replaceChildren();
    byId('buy-region').textContent = plainWords(error);
    return;
  }
  byId('buy-region').textContent = `Prices for ${state.priceList.country}, in ${state.priceList.currency}.`;
  list.replaceChildren(
    ...state.priceList.packages.map((pack) => {
      const button = element(
        'button',
        {
          type: 'button',
          'data-testid': `package-${pack.id}`,
          'aria-label': `Buy ${amountOf(pack.coins, 'coin')} for ${formatMoney(pack.price)}`,
        },
        element('span', { class: 'coins' }, `🪙 ${count(pack.coins)}`),
        element(
          'span',
          { class: pack.offer && pack.offer.price.amount < pack.price.amount ? 'price was' : 'price' },
          formatMoney(pack.price),
        ),
        ...(pack.offer ? [offerBadge(pack)] : []),
      );
      button.addEventListener('click', () => openCheckout(pack));
      return element('li', {}, button);
    }),
  );
  renderSpendable();
}

/** sessionStorage: the recharge a PayPal redirect is paying, to pick up when PayPal sends the person back. */
const REDIRECT_PAYMENT_KEY = 'live-gifting.redirect-payment';
const redirectPaymentSchema = z.object({ rechargeId: z.string(), coins: z.int(), bonusCoins: z.int() });

interface Breakdown {
  coins: Money;
  discount: Money;
  platformFee: Money;
  methodFee: Money;
  total: Money;
}

/** The all-in price before paying, from the catalog: what POST /v1/recharges will charge (it is sent as expectedTotal). */
function quoteFor(pack: CoinPackage, method: string): Breakdown | undefined {
  const list = state.priceList;
  const chosen = list?.methods.find((candidate) => candidate.method === method);
  if (!list || !chosen) return undefined;
  const currency = pack.price.currency;
  const platformFee = list.platformFee ?? { amount: 0, currency };
  const offerPrice = pack.offer?.price.amount ?? pack.price.amount;
  const coinsValue = pack.price.amount - platformFee.amount;
  return {
    coins: { amount: coinsValue, currency },
    discount: { amount: pack.price.amount - offerPrice, currency },
    platformFee,
    methodFee: chosen.fee,
    total: { amount: offerPrice + chosen.fee.amount, currency },
  };
}

function renderBreakdown(pack: CoinPackage, method: string): void {
  const quote = quoteFor(pack, method);
  if (!quote) return;
  const bonus = pack.offer?.bonusCoins ?? 0;
  const coinsText =
    bonus > 0 ? `${amountOf(pack.coins, 'coin')} + ${count(bonus)} bonus` : `${amountOf(pack.coins, 'coin')}`;
  byId('checkout-summary').textContent = `${coinsText} for ${formatMoney(quote.total)}.`;
  const row = (label: string, value: Money, testId: string) =>
    element('li', { 'data-testid': testId }, element('span', {}, label), element('span', {}, formatMoney(value)));
  const rows = [row(`${amountOf(pack.coins, 'coin')}`, quote.coins, 'breakdown-coins')];
  if (quote.discount.amount > 0)
    rows.push(row('Offer discount', { ...quote.discount, amount: -quote.discount.amount }, 'breakdown-discount'));
  rows.push(row('Platform fee', quote.platformFee, 'breakdown-platform-fee'));
  rows.push(row(`${method === 'paypal' ? 'PayPal' : 'Card'} fee`, quote.methodFee, 'breakdown-method-fee'));
  rows.push(row('Total', quote.total, 'breakdown-total'));
  byId('checkout-breakdown').replaceChildren(...rows);
  byId('checkout-pay').textContent = `Pay ${formatMoney(quote.total)}${method === 'paypal' ? ' with PayPal' : ''}`;
  byId('checkout-pay').setAttribute('aria-label', `Pay ${formatMoney(quote.total)} for ${coinsText}`);
}

function renderMethods(pack: CoinPackage): void {
  const methods = state.priceList?.methods ?? [];
  byId('checkout-methods').replaceChildren(
    ...methods.map((offer) => {
      const input = element('input', {
        type: 'radio',
        name: 'checkout-method',
        value: offer.method,
        'data-testid': `method-${offer.method}`,
      });
      input.checked = offer.method === state.checkout?.method;
      input.addEventListener('change', () => {
        if (!state.checkout) return;
        state.checkout.method = offer.method;
        renderBreakdown(pack, offer.method);
      });
      const label = offer.method === 'paypal' ? 'PayPal (you will be sent to PayPal)' : 'Card';
      return element('label', {}, input, ` ${label}`);
    }),
  );
}

function openCheckout(pack: CoinPackage): void {
  state.checkout = { pack, key: newKey('recharge'), method: 'card' };
  renderMethods(pack);
  renderBreakdown(pack, 'card');
  const status = byId('checkout-status');
  status.textContent = '';
  delete status.dataset.state;
  byId<HTMLDialogElement>('checkout').showModal();
}

function checkoutStatus(text: string, phase: 'working' | 'done' | 'error'): void {
  const status = byId('checkout-status');
  status.textContent = text;
  status.dataset.state = phase;
}

export async function pay(): Promise<void> {
  if (!state.checkout) return;
  const { pack, key, method } = state.checkout;
  const quote = quoteFor(pack, method);
  checkoutStatus('Creating the payment…', 'working');
  const recharge = await api('POST', '/v1/recharges', rechargeCreatedSchema, {
    body: {
      packageId: pack.id,
      method,
      ...(pack.offer && { offerId: pack.offer.offerId }),
      ...(quote && { expectedTotal: quote.total }),
      ...(method === 'paypal' && { returnUrl: `${location.origin}/` }),
    },
    idempotencyKey: key,
  });
  if (recharge.payment.redirectUrl !== undefined) {
    checkoutStatus('Taking you to PayPal…', 'working');
    const pending = { rechargeId: recharge.rechargeId, coins: recharge.coins, bonusCoins: recharge.bonusCoins ?? 0 };
    sessionStorage.setItem(REDIRECT_PAYMENT_KEY, JSON.stringify(pending));
    location.assign(recharge.payment.redirectUrl);
    return;
  }
  checkoutStatus('Confirming the payment with the card processor…', 'working');
  // Local stack only: the payments stand-in completes the PaymentIntent and sends the signed
  // webhook, as Stripe would once the card is confirmed.
  await api('POST', `/dev/payments/${encodeURIComponent(recharge.payment.paymentIntentId)}/succeed`, z.unknown());
  checkoutStatus('Payment received. Adding your coins…', 'working');
  const outcome = await awaitCredit(recharge.rechargeId);
  if (outcome === 'pending') {
    checkoutStatus('The payment is still being processed. Your coins will appear when it completes.', 'working');
    return;
  }
  await refreshWallet();
  const added = recharge.coins + (recharge.bonusCoins ?? 0);
  checkoutStatus(`Done: ${amountOf(added, 'coin')} added.`, 'done');
  state.checkout = undefined;
  byId<HTMLDialogElement>('checkout').close();
  notify(`${amountOf(added, 'coin')} added to your wallet.`);
}

/** Polls the recharge until the webhook credited it, it failed, or the deadline passed. */
async function awaitCredit(rechargeId: string): Promise<'succeeded' | 'pending'> {
  const deadline = Date.now() + RECHARGE_POLL_DEADLINE_MS;
  for (;;) {
    const current = await api('GET', `/v1/recharges/${encodeURIComponent(rechargeId)}`, rechargeSchema);
    if (current.status === 'succeeded') return 'succeeded';
    if (current.status === 'failed' || current.status === 'disputed')
      throw new ApiError('PAYMENT_FAILED', 'The payment did not go through.', 402);
    if (Date.now() > deadline) return 'pending';
    await sleep(RECHARGE_POLL_INTERVAL_MS);
  }
}

/**
 * Back from PayPal: Stripe's `redirect_status` says what the person did there; the coins still
 * come only with the webhook, so a success waits for the recharge to be credited.
 */
export async function resumeRedirectPayment(): Promise<void> {
  const params = new URLSearchParams(location.search);
  const redirectStatus = params.get('redirect_status');
  const stored = sessionStorage.getItem(REDIRECT_PAYMENT_KEY);
  if (redirectStatus === null || stored === null) return;
  sessionStorage.removeItem(REDIRECT_PAYMENT_KEY);
  history.replaceState(null, '', location.pathname);
  const pending = redirectPaymentSchema.safeParse(JSON.parse(stored));
  if (!pending.success) return;
  const added = pending.data.coins + pending.data.bonusCoins;
  const status = byId('payment-return');
  status.hidden = false;
  status.dataset.state = redirectStatus;
  if (redirectStatus === 'failed') {
    status.textContent = 'PayPal payment cancelled: nothing was charged.';
    return;
  }
  if (redirectStatus === 'processing') {
    status.textContent = `PayPal approved the payment. Your ${amountOf(added, 'coin')} arrive when it settles.`;
    return;
  }
  status.textContent = 'PayPal approved the payment. Adding your coins…';
  if ((await awaitCredit(pending.data.rechargeId)) === 'succeeded') {
    await refreshWallet();
    status.textContent = `Paid with PayPal: ${amountOf(added, 'coin')} added.`;
    notify(`${amountOf(added, 'coin')} added to your wallet.`);
  }
}

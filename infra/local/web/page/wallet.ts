/** The wallet, its monthly budget, and the transaction history. */
import { amountOf, byId, count, element } from '../kit';
import { ApiError } from './words';
import { HISTORY_PAGE_SIZE, WALLET_REFRESH_DEBOUNCE_MS } from './limits';
import { type Money, type Transaction, transactionsSchema, walletSchema } from './answers';
import { api } from './api';
import { formatMoney, parseMoneyInput, timeOf } from './format';
import { notify, showError } from './notices';
import { renderPayoutEstimate } from './payouts';
import { renderSpendable } from './streams';
import { state } from './state';

function setCount(id: string, value: number): void {
  const node = byId(id);
  node.textContent = count(value);
  node.dataset.value = String(value);
}

export function renderWallet(): void {
  if (!state.wallet) return;
  setCount('wallet-coins', state.wallet.coins);
  setCount('wallet-diamonds', state.wallet.diamonds);
  setCount('wallet-pending', state.wallet.pendingDiamonds);
  const owed = byId('wallet-owed');
  owed.hidden = state.wallet.owedCoins <= 0;
  owed.textContent = `You owe ${amountOf(state.wallet.owedCoins, 'coin')} after a disputed payment; your next purchase pays them first.`;
  const locked = byId('wallet-locked');
  locked.hidden = !state.wallet.locked;
  locked.textContent = '🔒 Your wallet is locked: buying, gifting and payouts are paused.';
  // In the room, the balance that matters there: coins to spend, or diamonds arriving.
  byId('room-balance').textContent =
    state.session?.role === 'creator'
      ? `💎 ${amountOf(state.wallet.diamonds, 'diamond')}`
      : `🪙 ${amountOf(state.wallet.coins, 'coin')}`;
  const budget = state.wallet.budget;
  byId('budget-current').textContent = budget.monthlyLimit
    ? `Monthly budget ${formatMoney(budget.monthlyLimit)}; spent this month ${formatMoney(budget.spentThisMonth)}.`
    : `No monthly budget; spent this month ${formatMoney(budget.spentThisMonth)}.`;
  renderPayoutEstimate();
  renderSpendable();
}

/** A wallet push (WS) carries the balances only; the budget and history come from a re-fetch. */
export function applyWalletPush(update: { coins: number; diamonds: number; pendingDiamonds: number }): void {
  if (!state.wallet) return;
  const gained = update.diamonds - state.wallet.diamonds;
  state.wallet = {
    ...state.wallet,
    coins: update.coins,
    diamonds: update.diamonds,
    pendingDiamonds: update.pendingDiamonds,
  };
  renderWallet();
  if (gained > 0) popDiamonds(gained);
  scheduleWalletRefresh();
}

function popDiamonds(gained: number): void {
  const pop = byId('diamond-pop');
  pop.textContent = ` +${count(gained)}`;
  pop.classList.remove('show');
  // Restart the CSS animation: reading layout in between makes the browser see a new start.
  void pop.offsetWidth;
  pop.classList.add('show');
}

export async function refreshWallet(): Promise<void> {
  const before = state.wallet?.diamonds;
  const [fresh] = await Promise.all([api('GET', '/v1/wallet', walletSchema), refreshHistory()]);
  state.wallet = fresh;
  renderWallet();
  if (before !== undefined && fresh.diamonds > before) popDiamonds(fresh.diamonds - before);
}

export function scheduleWalletRefresh(): void {
  clearTimeout(state.walletRefreshTimer);
  const epoch = state.sessionEpoch;
  state.walletRefreshTimer = setTimeout(() => {
    if (epoch === state.sessionEpoch) refreshWallet().catch(showError);
  }, WALLET_REFRESH_DEBOUNCE_MS);
}

const TRANSACTION_WORDS: Readonly<Record<string, string>> = {
  recharge: 'Bought coins',
  gift_sent: 'Sent a gift',
  gift_received: 'Gift received',
  payout_requested: 'Payout requested',
  payout_paid: 'Payout paid',
  payout_reversed: 'Payout returned',
  chargeback: 'Payment disputed',
};

function signed(value: number | undefined, unit: 'coin' | 'diamond' | 'pending'): string {
  if (!value) return '';
  const amount = unit === 'pending' ? `${count(Math.abs(value))} pending` : amountOf(Math.abs(value), unit);
  return `${value > 0 ? '+' : '−'}${amount}`;
}

function historyItem(entry: Transaction): HTMLLIElement {
  const amounts = [
    signed(entry.coins, 'coin'),
    signed(entry.diamonds, 'diamond'),
    signed(entry.pendingDiamonds, 'pending'),
  ]
    .filter(Boolean)
    .join(', ');
  return element(
    'li',
    { 'data-testid': 'history-item', 'data-type': entry.type },
    element('span', {}, TRANSACTION_WORDS[entry.type] ?? entry.type),
    element('span', { class: 'amount' }, amounts),
    element('time', { datetime: entry.createdAt }, timeOf(entry.createdAt)),
  );
}

export async function refreshHistory(more = false): Promise<void> {
  const cursor = more && state.historyCursor ? `&cursor=${encodeURIComponent(state.historyCursor)}` : '';
  const page = await api('GET', `/v1/wallet/transactions?limit=${HISTORY_PAGE_SIZE}${cursor}`, transactionsSchema);
  const list = byId('history-list');
  const items = page.items.map(historyItem);
  if (more) list.append(...items);
  else list.replaceChildren(...items);
  if (!more && items.length === 0) list.append(element('li', { class: 'fine' }, 'Nothing yet.'));
  state.historyCursor = page.nextCursor ?? null;
  byId('history-more').hidden = state.historyCursor === null;
}

export async function saveBudget(clear: boolean): Promise<void> {
  // Pressed before the first wallet load finished: load it now rather than ignore the press.
  if (!state.wallet) await refreshWallet();
  if (!state.wallet) return;
  const currency = state.priceList?.currency ?? state.wallet.budget.spentThisMonth.currency;
  let monthlyLimit: Money | null = null;
  if (!clear) {
    const amount = parseMoneyInput(byId<HTMLInputElement>('budget-amount').value, currency);
    if (amount === undefined)
      throw new ApiError('VALIDATION_FAILED', 'budget', 400, [
        { path: 'budget', message: `an amount such as 20.00 (${currency})` },
      ]);
    monthlyLimit = { amount, currency };
  }
  state.wallet = await api('PUT', '/v1/wallet/budget', walletSchema, { body: { monthlyLimit } });
  renderWallet();
  notify(monthlyLimit ? `Monthly budget set to ${formatMoney(monthlyLimit)}.` : 'Monthly budget removed.');
}

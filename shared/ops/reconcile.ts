import { ScanCommand, type AttributeValue, type ScanCommandOutput } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { DynamoSend } from '../adapters/dynamo/ledger-store';
import { userIdFromKey } from '../adapters/dynamo/keys';

/**
 * Reads the whole ledger and checks the money rules:
 *   coins minted (bought + offers' bonus) = coins held + coins gifted + coins clawed back (net of disputes won)
 *   diamonds credited = diamonds available + pending + paid out
 *   for every wallet, the sum of its entries equals its balance, and no balance is negative;
 *   no PaymentIntent is credited more than once, nor its bonus coins;
 *   every credited recharge's bonus coins are exactly its offer's, in one `recharge_bonus` entry;
 *   no recharge is credited past the monthly limit in force when it was credited.
 * An operator tool (and the integration tests' final check): it scans, in parallel segments.
 */
export const RECONCILE_SCAN_SEGMENTS = 4;

export interface Balances {
  coins: number;
  owedCoins: number;
  diamonds: number;
  pendingDiamonds: number;
}

export interface ReconcileReport {
  totals: {
    wallets: number;
    entries: number;
    coinsMinted: number;
    /** Bonus coins of offers (`recharge_bonus` entries): minted, but not bought. */
    bonusCoinsMinted: number;
    coinsHeld: number;
    coinsGifted: number;
    coinsClawedBack: number;
    coinsOwed: number;
    diamondsCredited: number;
    diamondsAvailable: number;
    diamondsPending: number;
    diamondsPaidOut: number;
  };
  discrepancies: string[];
  ok: boolean;
}

const zero = (): Balances => ({ coins: 0, owedCoins: 0, diamonds: 0, pendingDiamonds: 0 });
const FIELDS: Array<keyof Balances> = ['coins', 'owedCoins', 'diamonds', 'pendingDiamonds'];

function integer(value: unknown): number | undefined {
  if (value === undefined) return 0;
  return typeof value === 'number' && Number.isSafeInteger(value) ? value : undefined;
}

/** `USER#alice`, `USER#alice#S3`, `USER#alice#E3` -> alice. Keys hold user ids encoded without '#' (keys.ts). */
function userOf(pk: string): string | undefined {
  const match = /^USER#([^#]+)(?:#[SE]\d+)?$/.exec(pk);
  return match?.[1] === undefined ? undefined : userIdFromKey(match[1]);
}

async function scanAll(client: DynamoSend, tableName: string): Promise<Record<string, unknown>[]> {
  const segments = await Promise.all(
    Array.from({ length: RECONCILE_SCAN_SEGMENTS }, async (_, segment) => {
      const items: Record<string, unknown>[] = [];
      let startKey: Record<string, AttributeValue> | undefined;
      do {
        const page: ScanCommandOutput = await client.send(
          new ScanCommand({
            TableName: tableName,
            Segment: segment,
            TotalSegments: RECONCILE_SCAN_SEGMENTS,
            ConsistentRead: true,
            ...(startKey && { ExclusiveStartKey: startKey }),
          }),
        );
        for (const item of page.Items ?? []) items.push(unmarshall(item));
        startKey = page.LastEvaluatedKey;
      } while (startKey);
      return items;
    }),
  );
  return segments.flat();
}

/** What a reconciliation accumulates as it reads the ledger. */
interface Books {
  /** Per user: what the wallet and shard items hold. */
  balances: Map<string, Balances>;
  /** Per user: what the entries add up to. */
  sums: Map<string, Balances>;
  discrepancies: string[];
  budgets: BudgetHistory;
  creditsByPaymentIntent: Map<string, number>;
  bonuses: BonusCheck;
  totals: ReconcileReport['totals'];
}

function emptyBooks(): Books {
  return {
    balances: new Map(),
    sums: new Map(),
    discrepancies: [],
    budgets: new BudgetHistory(),
    creditsByPaymentIntent: new Map(),
    bonuses: new BonusCheck(),
    totals: {
      wallets: 0,
      entries: 0,
      coinsMinted: 0,
      bonusCoinsMinted: 0,
      coinsHeld: 0,
      coinsGifted: 0,
      coinsClawedBack: 0,
      coinsOwed: 0,
      diamondsCredited: 0,
      diamondsAvailable: 0,
      diamondsPending: 0,
      diamondsPaidOut: 0,
    },
  };
}

function account(map: Map<string, Balances>, user: string): Balances {
  let value = map.get(user);
  if (!value) map.set(user, (value = zero()));
  return value;
}

export async function reconcileLedger(client: DynamoSend, tableName: string): Promise<ReconcileReport> {
  const books = emptyBooks();
  for (const item of await scanAll(client, tableName)) readItem(books, item);
  checkWallets(books);
  const { totals, discrepancies } = books;
  for (const [paymentIntentId, credits] of books.creditsByPaymentIntent) {
    if (credits > 1) discrepancies.push(`PaymentIntent ${paymentIntentId} credited ${credits} times`);
  }
  discrepancies.push(...books.budgets.creditsPastTheLimit());
  discrepancies.push(...books.bonuses.mismatches());

  const minted = totals.coinsMinted + totals.bonusCoinsMinted;
  if (minted !== totals.coinsHeld + totals.coinsGifted + totals.coinsClawedBack) {
    discrepancies.push(
      `coins: minted ${totals.coinsMinted} + bonus ${totals.bonusCoinsMinted} != held ${totals.coinsHeld} + gifted ${totals.coinsGifted} + clawed back ${totals.coinsClawedBack}`,
    );
  }
  if (totals.diamondsCredited !== totals.diamondsAvailable + totals.diamondsPending + totals.diamondsPaidOut) {
    discrepancies.push(
      `diamonds: credited ${totals.diamondsCredited} != available ${totals.diamondsAvailable} + pending ${totals.diamondsPending} + paid out ${totals.diamondsPaidOut}`,
    );
  }
  return { totals, discrepancies, ok: discrepancies.length === 0 };
}

/** One item of the ledger: a recharge, a limit change, a wallet or shard balance, an entry, or nothing to count. */
function readItem(books: Books, item: Record<string, unknown>): void {
  const pk = String(item.pk);
  const sk = String(item.sk);
  if (pk.startsWith('RECHARGE#') && sk === 'RECHARGE') {
    books.budgets.recordRecharge(item);
    books.bonuses.recordRecharge(item);
    return;
  }
  const user = userOf(pk);
  if (user === undefined) return;
  if (sk.startsWith('BUDGETLIMIT#')) books.budgets.recordLimit(user, item);
  else if (sk === 'WALLET' || sk === 'SHARD') readBalance(books, user, pk, sk, item);
  else if (sk.startsWith('TX#')) readEntry(books, user, pk, sk, item);
}

function readBalance(books: Books, user: string, pk: string, sk: string, item: Record<string, unknown>): void {
  const balance = account(books.balances, user);
  // Shards only grow; the main item's diamonds already count `shardDiamondsFolded` of them.
  if (sk === 'WALLET') balance.diamonds -= integer(item.shardDiamondsFolded) ?? 0;
  for (const field of FIELDS) {
    const value = integer(item[field]);
    if (value === undefined) {
      books.discrepancies.push(`${pk}/${sk}: ${field} is not an integer (${String(item[field])})`);
      continue;
    }
    if (value < 0) books.discrepancies.push(`${pk}/${sk}: ${field} is negative (${value})`);
    balance[field] += value;
  }
}

function readEntry(books: Books, user: string, pk: string, sk: string, item: Record<string, unknown>): void {
  const { totals } = books;
  totals.entries += 1;
  const delta: Balances = zero();
  for (const field of FIELDS) {
    const value = integer(item[field]);
    if (value === undefined) {
      books.discrepancies.push(`${pk}/${sk}: entry ${field} is not an integer`);
      continue;
    }
    delta[field] = value;
  }
  const sum = account(books.sums, user);
  for (const field of FIELDS) sum[field] += delta[field];
  switch (item.entryType) {
    case 'recharge':
      // A credit pays the user's debt first: minted = coins credited + debt repaid.
      totals.coinsMinted += delta.coins - delta.owedCoins;
      totals.coinsClawedBack += -delta.owedCoins;
      countCredit(books.creditsByPaymentIntent, item, books.discrepancies);
      break;
    case 'recharge_bonus':
      // Bonus coins pay debt first too: minted = bonus credited + debt repaid.
      totals.bonusCoinsMinted += delta.coins - delta.owedCoins;
      totals.coinsClawedBack += -delta.owedCoins;
      books.bonuses.recordEntry(item, delta.coins - delta.owedCoins, books.discrepancies);
      break;
    case 'dispute_won':
      // Coins given back leave the clawed-back total; forgiven debt was never in it.
      totals.coinsClawedBack -= delta.coins;
      break;
    case 'over_budget_refund':
      break;
    case 'gift_sent':
      totals.coinsGifted += -delta.coins;
      break;
    case 'chargeback':
      totals.coinsClawedBack += -delta.coins;
      break;
    case 'gift_received':
      totals.diamondsCredited += delta.diamonds;
      break;
    case 'payout_paid':
      totals.diamondsPaidOut += -delta.pendingDiamonds;
      break;
    case 'payout_requested':
    case 'payout_reversed':
      break;
    default:
      books.discrepancies.push(`${pk}/${sk}: unknown entry type ${String(item.entryType)}`);
  }
}

/** Every wallet's balance against the sum of its entries, and the totals of what wallets hold. */
function checkWallets(books: Books): void {
  const { totals, discrepancies } = books;
  for (const user of new Set([...books.balances.keys(), ...books.sums.keys()])) {
    const balance = books.balances.get(user) ?? zero();
    const sum = books.sums.get(user) ?? zero();
    totals.wallets += 1;
    totals.coinsHeld += balance.coins;
    totals.coinsOwed += balance.owedCoins;
    totals.diamondsAvailable += balance.diamonds;
    totals.diamondsPending += balance.pendingDiamonds;
    if (balance.diamonds < 0)
      discrepancies.push(
        `wallet ${user}: available diamonds are negative (${balance.diamonds}): more was folded than its shards hold`,
      );
    for (const field of FIELDS) {
      if (balance[field] !== sum[field])
        discrepancies.push(`wallet ${user}: ${field} is ${balance[field]} but its entries sum to ${sum[field]}`);
    }
  }
}

/** Counts a recharge entry against its PaymentIntent; an entry that names none cannot be traced to a payment. */
function countCredit(credits: Map<string, number>, item: Record<string, unknown>, discrepancies: string[]): void {
  const ref = typeof item.ref === 'object' && item.ref !== null ? (item.ref as Record<string, unknown>) : {};
  if (typeof ref.paymentIntentId !== 'string') {
    discrepancies.push(`${String(item.pk)}/${String(item.sk)}: recharge entry names no PaymentIntent`);
    return;
  }
  credits.set(ref.paymentIntentId, (credits.get(ref.paymentIntentId) ?? 0) + 1);
}

interface LimitChange {
  at: string;
  limitMinor: number | null;
  currency: string | null;
}

interface CreditedRecharge {
  rechargeId: string;
  userId: string;
  budgetMonth: string;
  creditedAt: string;
  priceMinor: number;
  currency: string;
}

/**
 * Every credit against the monthly limit in force when it was credited: the month's credited
 * prices, in credit order, never pass it. A limit set before its history was kept is unknown, and
 * checks nothing.
 */
class BudgetHistory {
  private readonly limits = new Map<string, LimitChange[]>();
  private readonly credited: CreditedRecharge[] = [];

  recordLimit(userId: string, item: Record<string, unknown>): void {
    const change: LimitChange = {
      at: String(item.at),
      limitMinor: typeof item.limitMinor === 'number' ? item.limitMinor : null,
      currency: typeof item.currency === 'string' ? item.currency : null,
    };
    const list = this.limits.get(userId) ?? [];
    list.push(change);
    this.limits.set(userId, list);
  }

  recordRecharge(item: Record<string, unknown>): void {
    if (item.status !== 'succeeded' && item.status !== 'disputed') return;
    if (typeof item.creditedAt !== 'string' || typeof item.priceMinor !== 'number') return;
    this.credited.push({
      rechargeId: String(item.rechargeId),
      userId: String(item.userId),
      budgetMonth: String(item.budgetMonth),
      creditedAt: item.creditedAt,
      priceMinor: item.priceMinor,
      currency: String(item.currency),
    });
  }

  creditsPastTheLimit(): string[] {
    const found: string[] = [];
    const spent = new Map<string, number>();
    const inOrder = [...this.credited].sort((a, b) =>
      a.creditedAt < b.creditedAt ? -1 : a.creditedAt > b.creditedAt ? 1 : 0,
    );
    for (const recharge of inOrder) {
      const monthKey = `${recharge.userId} ${recharge.budgetMonth}`;
      const total = (spent.get(monthKey) ?? 0) + recharge.priceMinor;
      spent.set(monthKey, total);
      const limit = this.limitAt(recharge.userId, recharge.creditedAt);
      if (limit === undefined || limit.limitMinor === null) continue;
      if (limit.currency !== recharge.currency || total > limit.limitMinor) {
        found.push(
          `recharge ${recharge.rechargeId} of ${recharge.userId} credited past the monthly limit in force (${total} ${recharge.currency} credited in ${recharge.budgetMonth}, limit ${limit.limitMinor} ${String(limit.currency)})`,
        );
      }
    }
    return found;
  }

  /**
   * The limit in force at `at`. A change stamped in the same millisecond as the credit may have
   * landed on either side of it, so the more permissive of the two readings is the one judged.
   */
  private limitAt(userId: string, at: string): LimitChange | undefined {
    let before: LimitChange | undefined;
    let sameInstant: LimitChange | undefined;
    for (const change of this.limits.get(userId) ?? []) {
      if (change.at < at && (before === undefined || change.at >= before.at)) before = change;
      if (change.at === at) sameInstant = change;
    }
    if (sameInstant === undefined || before === undefined) return sameInstant ?? before;
    if (before.limitMinor === null || sameInstant.limitMinor === null) return { ...before, limitMinor: null };
    return before.limitMinor >= sameInstant.limitMinor ? before : sameInstant;
  }
}

/**
 * Bonus coins against their recharges: a credited recharge with an offer's bonus has exactly one
 * `recharge_bonus` entry of that many coins, and no bonus entry exists without such a recharge.
 */
class BonusCheck {
  /** Credited recharges' bonus coins, by recharge id. */
  private readonly owed = new Map<string, number>();
  /** Bonus minted per recharge id, and how many entries did it. */
  private readonly credited = new Map<string, { coins: number; entries: number }>();

  recordRecharge(item: Record<string, unknown>): void {
    if (item.status !== 'succeeded' && item.status !== 'disputed') return;
    const bonus = typeof item.bonusCoins === 'number' ? item.bonusCoins : 0;
    if (bonus > 0) this.owed.set(String(item.rechargeId), bonus);
  }

  recordEntry(item: Record<string, unknown>, minted: number, discrepancies: string[]): void {
    const ref = typeof item.ref === 'object' && item.ref !== null ? (item.ref as Record<string, unknown>) : {};
    if (typeof ref.rechargeId !== 'string') {
      discrepancies.push(`${String(item.pk)}/${String(item.sk)}: bonus entry names no recharge`);
      return;
    }
    const seen = this.credited.get(ref.rechargeId) ?? { coins: 0, entries: 0 };
    this.credited.set(ref.rechargeId, { coins: seen.coins + minted, entries: seen.entries + 1 });
  }

  mismatches(): string[] {
    const found: string[] = [];
    for (const [rechargeId, bonus] of this.owed) {
      const seen = this.credited.get(rechargeId);
      if (seen === undefined) found.push(`recharge ${rechargeId}: its ${bonus} bonus coins were never credited`);
      else if (seen.entries > 1) found.push(`recharge ${rechargeId}: bonus credited ${seen.entries} times`);
      else if (seen.coins !== bonus)
        found.push(`recharge ${rechargeId}: ${seen.coins} bonus coins credited, its offer gave ${bonus}`);
    }
    for (const rechargeId of this.credited.keys())
      if (!this.owed.has(rechargeId))
        found.push(`recharge ${rechargeId}: bonus coins credited without an offer's bonus`);
    return found;
  }
}

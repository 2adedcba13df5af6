import { ScanCommand, type AttributeValue, type ScanCommandOutput } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { DynamoSend } from '../adapters/dynamo/ledger-store';
import { userIdFromKey } from '../adapters/dynamo/keys';

/**
 * Reads the whole ledger and checks the money rules of DESIGN.md:
 *   coins minted      = coins held + coins gifted + coins clawed back
 *   diamonds credited = diamonds available + pending + paid out
 *   for every wallet, the sum of its entries equals its balance, and no balance is negative.
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

export async function reconcileLedger(client: DynamoSend, tableName: string): Promise<ReconcileReport> {
  const items = await scanAll(client, tableName);
  const balances = new Map<string, Balances>();
  const sums = new Map<string, Balances>();
  const discrepancies: string[] = [];
  const totals: ReconcileReport['totals'] = {
    wallets: 0,
    entries: 0,
    coinsMinted: 0,
    coinsHeld: 0,
    coinsGifted: 0,
    coinsClawedBack: 0,
    coinsOwed: 0,
    diamondsCredited: 0,
    diamondsAvailable: 0,
    diamondsPending: 0,
    diamondsPaidOut: 0,
  };
  const account = (map: Map<string, Balances>, user: string) => {
    let value = map.get(user);
    if (!value) map.set(user, (value = zero()));
    return value;
  };

  for (const item of items) {
    const pk = String(item.pk);
    const sk = String(item.sk);
    const user = userOf(pk);
    if (user === undefined) continue;
    if (sk === 'WALLET' || sk === 'SHARD') {
      const balance = account(balances, user);
      for (const field of FIELDS) {
        const value = integer(item[field]);
        if (value === undefined) {
          discrepancies.push(`${pk}/${sk}: ${field} is not an integer (${String(item[field])})`);
          continue;
        }
        if (value < 0) discrepancies.push(`${pk}/${sk}: ${field} is negative (${value})`);
        balance[field] += value;
      }
      continue;
    }
    if (!sk.startsWith('TX#')) continue;
    totals.entries += 1;
    const delta: Balances = zero();
    for (const field of FIELDS) {
      const value = integer(item[field]);
      if (value === undefined) {
        discrepancies.push(`${pk}/${sk}: entry ${field} is not an integer`);
        continue;
      }
      delta[field] = value;
    }
    const sum = account(sums, user);
    for (const field of FIELDS) sum[field] += delta[field];
    switch (item.entryType) {
      case 'recharge':
        // A credit pays the user's debt first: minted = coins credited + debt repaid.
        totals.coinsMinted += delta.coins - delta.owedCoins;
        totals.coinsClawedBack += -delta.owedCoins;
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
        discrepancies.push(`${pk}/${sk}: unknown entry type ${String(item.entryType)}`);
    }
  }

  for (const user of new Set([...balances.keys(), ...sums.keys()])) {
    const balance = balances.get(user) ?? zero();
    const sum = sums.get(user) ?? zero();
    totals.wallets += 1;
    totals.coinsHeld += balance.coins;
    totals.coinsOwed += balance.owedCoins;
    totals.diamondsAvailable += balance.diamonds;
    totals.diamondsPending += balance.pendingDiamonds;
    for (const field of FIELDS) {
      if (balance[field] !== sum[field]) discrepancies.push(`wallet ${user}: ${field} is ${balance[field]} but its entries sum to ${sum[field]}`);
    }
  }

  if (totals.coinsMinted !== totals.coinsHeld + totals.coinsGifted + totals.coinsClawedBack) {
    discrepancies.push(
      `coins: minted ${totals.coinsMinted} != held ${totals.coinsHeld} + gifted ${totals.coinsGifted} + clawed back ${totals.coinsClawedBack}`,
    );
  }
  if (totals.diamondsCredited !== totals.diamondsAvailable + totals.diamondsPending + totals.diamondsPaidOut) {
    discrepancies.push(
      `diamonds: credited ${totals.diamondsCredited} != available ${totals.diamondsAvailable} + pending ${totals.diamondsPending} + paid out ${totals.diamondsPaidOut}`,
    );
  }
  return { totals, discrepancies, ok: discrepancies.length === 0 };
}

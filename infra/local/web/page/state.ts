/** Everything the page remembers, in one object (PageState). */
import type * as z from 'zod/mini';
import type { Consent } from '../guardian';
import type { CoinPackage, Gift, Session, Wallet, packagesSchema } from './answers';
import type { Room } from './room';

/** Everything the page remembers, in one place: sign-out resets it field by field (signOut). */
interface PageState {
  session: Session | undefined;
  wallet: Wallet | undefined;
  priceList: z.infer<typeof packagesSchema> | undefined;
  giftCatalog: Gift[];
  /** Consent as recharges and gifts judge it (GET /v1/consent); undefined until read. */
  consent: Consent | undefined;
  room: Room | undefined;
  historyCursor: string | null;
  streamsTimer: ReturnType<typeof setInterval> | undefined;
  walletRefreshTimer: ReturnType<typeof setTimeout> | undefined;
  /** Bumped at sign-out so that loops started for an earlier session stop. */
  sessionEpoch: number;
  noticeTimer: ReturnType<typeof setTimeout> | undefined;
  alertTimer: ReturnType<typeof setTimeout> | undefined;
  /** One checkout = one idempotency key: pressing Pay twice, or again after a dropped answer, buys once. */
  checkout: { pack: CoinPackage; key: string; method: string } | undefined;
  payoutAccountPolling: boolean;
  payoutsPollingUntil: number;
  /** A payout request keeps its key until it succeeds: a retry after a dropped answer pays once. */
  payoutRequest: { key: string; diamonds: number } | undefined;
}

export const state: PageState = {
  session: undefined,
  wallet: undefined,
  priceList: undefined,
  giftCatalog: [],
  consent: undefined,
  room: undefined,
  historyCursor: null,
  streamsTimer: undefined,
  walletRefreshTimer: undefined,
  sessionEpoch: 0,
  noticeTimer: undefined,
  alertTimer: undefined,
  checkout: undefined,
  payoutAccountPolling: false,
  payoutsPollingUntil: 0,
  payoutRequest: undefined,
};

export function wsBaseUrl(): string {
  const configured = document.querySelector<HTMLMetaElement>('meta[name="ws-url"]')?.content ?? '';
  if (/^wss?:\/\//.test(configured)) return configured.replace(/\/+$/, '');
  // Served without the stack's substitution: assume the local default layout (WS on the next port).
  const port = Number(location.port || (location.protocol === 'https:' ? 443 : 80)) + 1;
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.hostname}:${port}`;
}

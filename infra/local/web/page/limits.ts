/** Limits and timings of the page. Each is a bound on work the page may cause. */

/** sessionStorage: one signed-in person per tab, so a second tab can be the other person. */
export const SESSION_KEY = 'live-gifting.session';
export const HISTORY_PAGE_SIZE = 20;
export const FEED_MAX_ITEMS = 50;
export const LEADERBOARD_SIZE = 10;
/** API.md's example page size for catch-up. */
export const CATCH_UP_PAGE_SIZE = 100;
/** A catch-up reads at most this many pages before letting live events through again. */
export const MAX_CATCH_UP_PAGES = 20;
/** A gap the events route cannot fill is retried this often before the page skips over it. */
export const GAP_FETCH_ATTEMPTS = 3;
export const GAP_RETRY_DELAY_MS = 700;
export const RECONNECT_BASE_DELAY_MS = 500;
export const RECONNECT_MAX_DELAY_MS = 10_000;
export const MAX_RECONNECT_ATTEMPTS = 30;
/** API Gateway closes a WebSocket idle for 10 minutes; a ping well inside that keeps it. */
export const PING_INTERVAL_MS = 4 * 60_000;
/** A gift not acknowledged before a drop is sent again (same requestId: the server dedupes) if this young. */
export const PENDING_GIFT_RESEND_WINDOW_MS = 60_000;
export const RECHARGE_POLL_INTERVAL_MS = 400;
export const RECHARGE_POLL_DEADLINE_MS = 30_000;
export const ONBOARDING_POLL_INTERVAL_MS = 1_000;
export const ONBOARDING_POLL_DEADLINE_MS = 5 * 60_000;
export const PAYOUT_POLL_INTERVAL_MS = 1_000;
/** API.md: locally a payout is paid within 10 s (60 s after a crash); polling stops well after. */
export const PAYOUT_POLL_DEADLINE_MS = 2 * 60_000;
export const STREAMS_REFRESH_INTERVAL_MS = 5_000;
/** API.md: RATE_LIMITED says when to come back; the page retries that many times at most. */
export const MAX_RATE_LIMIT_RETRIES = 3;
export const MAX_RETRY_AFTER_MS = 10_000;
/**
 * The room's counters come as `room` messages (API.md), so the page never polls the stream per
 * gift. The leaderboard has no message: while gifts arrive it is read at most this often.
 */
export const LEADERBOARD_REFRESH_MS = 5_000;
/** And once more this long after the last gift: the server folds the last gifts within 5 s. */
export const LEADERBOARD_TRAILING_MS = 8_000;
export const WALLET_REFRESH_DEBOUNCE_MS = 600;
export const MAX_CONCURRENT_ANIMATIONS = 24;
export const ANIMATION_DURATION_MS = 2_600;
export const NOTICE_DURATION_MS = 6_000;
/** API.md defaults, shown as hints only: the server decides. */
export const MIN_PAYOUT_DIAMONDS_HINT = 2_000;
export const CENTS_PER_DIAMOND_DENOMINATOR = 2;
export const MAX_NAME_LENGTH = 40;

/** The live room: WebSocket, room channel, catch-up, feed, animations, leaderboard. */
import { type RoomSubscription, subscribeToRoom } from '../room-channel';
import { amountOf, byId, count, element, giftImage } from '../kit';
import {
  ANIMATION_DURATION_MS,
  CATCH_UP_PAGE_SIZE,
  FEED_MAX_ITEMS,
  GAP_FETCH_ATTEMPTS,
  GAP_RETRY_DELAY_MS,
  LEADERBOARD_REFRESH_MS,
  LEADERBOARD_SIZE,
  LEADERBOARD_TRAILING_MS,
  MAX_CATCH_UP_PAGES,
  MAX_CONCURRENT_ANIMATIONS,
  MAX_RECONNECT_ATTEMPTS,
  PENDING_GIFT_RESEND_WINDOW_MS,
  PING_INTERVAL_MS,
  RECONNECT_BASE_DELAY_MS,
  RECONNECT_MAX_DELAY_MS,
  SESSION_KEY,
} from './limits';
import { ApiError } from './words';
import {
  type Gift,
  type GiftEvent,
  type ServerMessage,
  type Stream,
  batchSchema,
  eventsSchema,
  leaderboardSchema,
  profileSchema,
  serverMessageSchema,
  streamSchema,
  tokenSchema,
} from './answers';
import { api } from './api';
import { applyWalletPush, renderWallet, scheduleWalletRefresh } from './wallet';
import { clearError, notify, showError } from './notices';
import { nameOf, renderProfile, renderSpendable, showLiveControls } from './streams';
import { newKey, timeOf } from './format';
import { state, wsBaseUrl } from './state';

interface PendingGift {
  gift: Gift;
  quantity: number;
  createdAt: number;
  sent: boolean;
}

/** A token this close to its expiry is refreshed before it is used for a (re)connection. */
const TOKEN_REFRESH_MARGIN_MS = 5 * 60_000;

export function tokenClaims(token: string): Record<string, unknown> {
  try {
    const payload = token.split('.')[1] ?? '';
    const claims: unknown = JSON.parse(atob(payload.replace(/-/g, '+').replace(/_/g, '/')));
    return typeof claims === 'object' && claims !== null ? (claims as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/**
 * A new ID token for the same person. The demo's identity provider is /dev/tokens; an app on
 * Cognito calls InitiateAuth with REFRESH_TOKEN_AUTH instead (docs: the client example).
 */
async function refreshToken(): Promise<string> {
  if (!state.session) throw new ApiError('UNAUTHORIZED', 'signed out', 401);
  const claims = tokenClaims(state.session.token);
  const { token } = await api('POST', '/dev/tokens', tokenSchema, {
    body: {
      sub: state.session.userId,
      ...(typeof claims.birthdate === 'string' && { birthdate: claims.birthdate }),
      country: typeof claims.country === 'string' ? claims.country : state.session.country,
      parentalConsent: claims.parental_consent === true,
    },
  });
  state.session = { ...state.session, token };
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(state.session));
  return token;
}

async function freshToken(): Promise<string> {
  if (!state.session) throw new ApiError('UNAUTHORIZED', 'signed out', 401);
  const exp = tokenClaims(state.session.token).exp;
  if (typeof exp === 'number' && exp * 1000 - Date.now() > TOKEN_REFRESH_MARGIN_MS) return state.session.token;
  return refreshToken();
}

/** Whether an HTTP route refuses the token (401), or could not be reached at all (network). */
async function tokenRefused(token: string): Promise<'refused' | 'accepted' | 'network'> {
  try {
    const response = await fetch('/v1/wallet', { headers: { authorization: `Bearer ${token}` } });
    return response.status === 401 ? 'refused' : 'accepted';
  } catch {
    return 'network';
  }
}

export class Room {
  readonly streamId: string;
  private socket: WebSocket | undefined;
  /** The room's Event API channel (room-channel.ts): the broadcast's frames, besides the socket's. */
  private channel: RoomSubscription | undefined;
  private channelFrames = 0;
  private left = false;
  private ended: boolean;
  private reconnectAttempts = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private statsTimers: { soon?: ReturnType<typeof setTimeout>; trailing?: ReturnType<typeof setTimeout> } = {};
  /** The highest seq applied: events are applied once each, in order. */
  private lastSeq = 0;
  private readonly ahead = new Map<number, GiftEvent>();
  /** Seqs that came live while an earlier gap was filled: they animate even if catch-up reads them first. */
  private readonly seenLive = new Set<number>();
  private catchingUp = false;
  private catchUpAgain = false;
  private gapAttempts = 0;
  private readonly pending = new Map<string, PendingGift>();
  private animations = 0;
  /** `room` messages seen: a read of the stream that started before one does not overwrite it. */
  private roomMessages = 0;

  constructor(
    private readonly stream: Stream,
    private readonly asCreator: boolean,
  ) {
    this.streamId = stream.streamId;
    this.ended = stream.status !== 'live';
  }

  start(): void {
    byId('room').hidden = false;
    byId('room').dataset.streamId = this.streamId;
    byId('room-title').textContent = this.stream.title;
    byId('room-leave').hidden = this.asCreator;
    byId('gift-tray').hidden = this.asCreator;
    byId('gift-feed').replaceChildren();
    byId('leaderboard').replaceChildren();
    byId('leaderboard-empty').hidden = true;
    byId('animation-layer').replaceChildren();
    this.showCounters(this.stream.viewers, this.stream.giftCoins);
    renderProfile(this.stream.creator ?? undefined, this.stream.creatorId);
    byId('stage-caption').textContent = this.asCreator
      ? 'Gifts from your viewers land here.'
      : `${this.stream.creatorId} is live`;
    this.renderStatus();
    renderSpendable();
    this.connect();
    this.subscribeChannel();
    this.refreshStats();
  }

  /** Frames from the room's channel go through the same reader as the socket's; seq keeps them once. */
  private subscribeChannel(): void {
    if (this.ended) return;
    const status = byId('connection-status');
    freshToken()
      .then((token) =>
        subscribeToRoom(this.streamId, token, (frame) => {
          this.channelFrames += 1;
          status.dataset.channelFrames = String(this.channelFrames);
          this.onFrame(JSON.stringify(frame));
        }),
      )
      .then(
        (channel) => {
          if (this.left) {
            channel.close();
            return;
          }
          this.channel = channel;
          status.dataset.channel = 'subscribed';
          // Frames published before the subscription took effect come from the events route.
          this.catchUp();
        },
        () => {
          // No channel (no stand-in, an untrusted certificate, an ended room): the socket's frames remain.
          status.dataset.channel = 'unavailable';
        },
      );
  }

  leave(): void {
    this.left = true;
    this.channel?.close();
    clearTimeout(this.reconnectTimer);
    clearInterval(this.pingTimer);
    clearTimeout(this.statsTimers.soon);
    clearTimeout(this.statsTimers.trailing);
    this.socket?.close(1000, 'left');
  }

  get hasEnded(): boolean {
    return this.ended;
  }

  markEnded(): void {
    this.ended = true;
    this.renderStatus();
    byId('stage-caption').textContent = 'The stream has ended.';
    renderSpendable();
  }

  sendGift(gift: Gift, quantity: number): void {
    if (this.ended) {
      showError(new ApiError('STREAM_NOT_LIVE', 'ended', 409));
      return;
    }
    // The requestId is the idempotency key: a resend after a dropped connection cannot spend twice.
    const requestId = newKey('gift');
    this.pending.set(requestId, { gift, quantity, createdAt: Date.now(), sent: false });
    this.flushPending(false);
    notify(`Sending ${quantity} × ${gift.name}…`);
  }

  /**
   * Sends the gifts not sent yet; after a reconnect (`resendUnacknowledged`) also those sent on
   * the lost connection whose answer never came: the server answers a repeated requestId with
   * the first result instead of spending again.
   */
  private flushPending(resendUnacknowledged: boolean): void {
    if (this.socket?.readyState !== WebSocket.OPEN) return;
    const now = Date.now();
    for (const [requestId, entry] of this.pending) {
      if (entry.sent && !resendUnacknowledged) continue;
      if (now - entry.createdAt > PENDING_GIFT_RESEND_WINDOW_MS) {
        this.pending.delete(requestId);
        notify(`${entry.gift.name} was not confirmed; check your wallet before sending again.`);
        continue;
      }
      this.socket.send(
        JSON.stringify({ action: 'sendGift', requestId, giftId: entry.gift.id, quantity: entry.quantity }),
      );
      entry.sent = true;
    }
  }

  private connect(): void {
    if (!state.session || this.left) return;
    this.setConnection(this.reconnectAttempts === 0 ? 'connecting' : 'reconnecting');
    // ID tokens last an hour and API Gateway closes every connection after two: a reconnect
    // carries a token that is still good for a while.
    freshToken().then(
      (token) => this.open(token),
      () => this.scheduleReconnect(),
    );
  }

  private open(token: string): void {
    if (!state.session || this.left) return;
    const url = `${wsBaseUrl()}/?token=${encodeURIComponent(token)}&streamId=${encodeURIComponent(this.streamId)}`;
    const socket = new WebSocket(url);
    this.socket = socket;
    let opened = false;
    socket.addEventListener('open', () => {
      if (this.socket !== socket) return;
      opened = true;
      this.reconnectAttempts = 0;
      this.setConnection('connected');
      clearInterval(this.pingTimer);
      this.pingTimer = setInterval(
        () => socket.readyState === WebSocket.OPEN && socket.send(JSON.stringify({ action: 'ping' })),
        PING_INTERVAL_MS,
      );
      this.flushPending(true);
      // Whatever was broadcast while we were away (or before we came) comes from the events route.
      this.catchUp();
      this.readCounters();
    });
    socket.addEventListener('message', (event) => {
      if (this.socket === socket) this.onFrame(event.data);
    });
    socket.addEventListener('close', () => {
      if (this.socket !== socket) return;
      clearInterval(this.pingTimer);
      if (this.left) return;
      if (this.ended) {
        this.setConnection('closed');
        return;
      }
      if (opened) {
        this.scheduleReconnect();
        return;
      }
      // A browser shows a refused upgrade and a dead network alike (close 1006, before open):
      // the same token on an HTTP route tells a 401 (refresh it, then reconnect) from a drop.
      void tokenRefused(token).then(async (refused) => {
        if (refused === 'refused') await refreshToken().catch(() => undefined);
        this.scheduleReconnect();
      });
    });
  }

  private scheduleReconnect(): void {
    if (this.reconnectAttempts >= MAX_RECONNECT_ATTEMPTS) {
      this.setConnection('lost');
      showError(new ApiError('NETWORK', 'websocket', 0));
      return;
    }
    // Exponential backoff with jitter, so a server restart is not met by every viewer at once.
    const ceiling = Math.min(RECONNECT_MAX_DELAY_MS, RECONNECT_BASE_DELAY_MS * 2 ** this.reconnectAttempts);
    const delay = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
    this.reconnectAttempts += 1;
    this.setConnection('reconnecting');
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  private setConnection(connection: 'connecting' | 'connected' | 'reconnecting' | 'closed' | 'lost'): void {
    const words = {
      connecting: 'Connecting…',
      connected: 'Connected',
      reconnecting: 'Reconnecting…',
      closed: 'Disconnected',
      lost: 'Connection lost',
    } as const;
    const node = byId('connection-status');
    node.textContent = words[connection];
    node.dataset.state = connection;
  }

  private renderStatus(): void {
    const node = byId('room-status');
    node.textContent = this.ended ? 'Ended' : '● Live';
    node.dataset.state = this.ended ? 'ended' : 'live';
  }

  private onFrame(data: unknown): void {
    if (typeof data !== 'string') return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(data);
    } catch {
      return;
    }
    const batch = batchSchema.safeParse(parsed);
    const messages = batch.success ? batch.data.events : [parsed];
    for (const raw of messages) {
      const message = serverMessageSchema.safeParse(raw);
      // Message types this page does not know yet are skipped (the server may add some).
      if (message.success) this.onMessage(message.data);
    }
  }

  private onMessage(message: ServerMessage): void {
    switch (message.type) {
      case 'gift':
        this.deliver(message, 'live');
        return;
      case 'giftAck': {
        const entry = this.pending.get(message.requestId);
        this.pending.delete(message.requestId);
        if (state.wallet) {
          state.wallet = { ...state.wallet, coins: message.wallet.coins };
          renderWallet();
        }
        if (entry) notify(`Sent ${entry.quantity} × ${entry.gift.name}.`);
        clearError();
        scheduleWalletRefresh();
        return;
      }
      case 'error': {
        if (message.requestId) this.pending.delete(message.requestId);
        if (message.error.code === 'STREAM_NOT_LIVE') this.markEnded();
        showError(new ApiError(message.error.code, message.error.message, 0));
        return;
      }
      case 'wallet':
        applyWalletPush(message);
        return;
      case 'streamEnded':
        if (message.streamId === this.streamId) {
          this.markEnded();
          if (this.asCreator) showLiveControls(undefined);
          else notify(`${this.stream.title} has ended.`);
        }
        return;
      case 'pong':
        return;
      case 'room':
        if (message.streamId === this.streamId) this.showRoom(message.viewers, message.giftCoins);
        return;
      case 'giftSummary':
        this.summarize(message);
        return;
    }
  }

  /** The broadcaster's `room` message: the counters as they are now, pushed; no read needed. */
  private showRoom(viewers: number, giftCoins: number): void {
    this.roomMessages += 1;
    this.showCounters(viewers, giftCoins);
  }

  private showCounters(viewers: number | undefined, giftCoins: number | undefined): void {
    const watching = byId('room-viewers');
    watching.textContent = viewers === undefined ? '' : `${count(viewers)} watching`;
    if (viewers !== undefined) watching.dataset.value = String(viewers);
    else delete watching.dataset.value;
    const coins = byId('room-gift-coins');
    coins.textContent = giftCoins === undefined ? '' : ` · ${amountOf(giftCoins, 'coin')} in gifts`;
    coins.dataset.value = String(giftCoins ?? 0);
  }

  /**
   * A window too busy for one frame: its tail comes as one summary. In order, it advances the
   * room past its seqs; after a gap, catch-up reads the missing gifts singly instead.
   */
  private summarize(summary: Extract<ServerMessage, { type: 'giftSummary' }>): void {
    if (summary.streamId !== this.streamId || summary.toSeq <= this.lastSeq) return;
    if (summary.fromSeq > this.lastSeq + 1) {
      this.catchUp();
      return;
    }
    this.lastSeq = summary.toSeq;
    const total = summary.gifts.reduce((sum, gift) => sum + gift.coins, 0);
    const feed = byId('gift-feed');
    feed.prepend(
      element(
        'li',
        { 'data-testid': 'gift-feed-summary', 'data-seq': String(summary.toSeq) },
        element(
          'span',
          { class: 'gift-images' },
          ...summary.gifts.map((gift) => giftImage(gift.giftId, nameOf(gift.giftId))),
        ),
        element(
          'span',
          {},
          `${amountOf(summary.toSeq - summary.fromSeq + 1, 'more gift')} from ${amountOf(summary.senders, 'viewer')}`,
        ),
        element('span', { class: 'amount' }, `🪙 ${count(total)}`),
      ),
    );
    while (feed.children.length > FEED_MAX_ITEMS) feed.lastElementChild?.remove();
    this.scheduleLeaderboard();
    this.drainAhead();
  }

  /** Applies events once each and in seq order; a jump buffers the event and fetches the missing ones. */
  private deliver(event: GiftEvent, source: 'live' | 'catch-up'): void {
    if (event.streamId !== this.streamId || event.seq <= this.lastSeq) return;
    if (event.seq > this.lastSeq + 1) {
      this.ahead.set(event.seq, event);
      if (source === 'live') this.seenLive.add(event.seq);
      this.catchUp();
      return;
    }
    this.apply(event, source);
    this.drainAhead();
  }

  private drainAhead(): void {
    for (let next = this.ahead.get(this.lastSeq + 1); next; next = this.ahead.get(this.lastSeq + 1)) {
      this.ahead.delete(next.seq);
      this.apply(next, 'catch-up');
    }
    for (const seq of this.ahead.keys()) if (seq <= this.lastSeq) this.ahead.delete(seq);
    for (const seq of this.seenLive) if (seq <= this.lastSeq) this.seenLive.delete(seq);
  }

  private catchUp(): void {
    if (this.catchingUp) {
      this.catchUpAgain = true;
      return;
    }
    this.catchingUp = true;
    void (async () => {
      try {
        do {
          this.catchUpAgain = false;
          await this.readEvents();
        } while (this.catchUpAgain && !this.left);
      } catch (error) {
        if (!this.left && error instanceof ApiError && error.code !== 'NETWORK') showError(error);
      } finally {
        this.catchingUp = false;
        this.afterCatchUp();
      }
    })();
  }

  private async readEvents(): Promise<void> {
    for (let page = 0; page < MAX_CATCH_UP_PAGES && !this.left; page += 1) {
      const after = this.lastSeq;
      const result = await api(
        'GET',
        `/v1/streams/${encodeURIComponent(this.streamId)}/events?after=${after}&limit=${CATCH_UP_PAGE_SIZE}`,
        eventsSchema,
      );
      for (const item of result.items) this.deliver({ ...item, type: 'gift', streamId: this.streamId }, 'catch-up');
      // A page may be short and still have more behind it; an empty page, or one that did not
      // move us forward (a hole the server cannot fill yet), ends this round.
      if (result.items.length === 0 || this.lastSeq === after) return;
    }
  }

  private afterCatchUp(): void {
    if (this.left || this.ahead.size === 0) {
      this.gapAttempts = 0;
      return;
    }
    this.gapAttempts += 1;
    if (this.gapAttempts < GAP_FETCH_ATTEMPTS) {
      setTimeout(() => !this.left && this.catchUp(), GAP_RETRY_DELAY_MS);
      return;
    }
    // The missing events cannot be read back: show what we have rather than stall the room.
    this.gapAttempts = 0;
    const first = Math.min(...this.ahead.keys());
    this.lastSeq = first - 1;
    this.drainAhead();
  }

  private apply(event: GiftEvent, source: 'live' | 'catch-up'): void {
    this.lastSeq = event.seq;
    const name = nameOf(event.giftId);
    const from = event.fromUserId === state.session?.userId ? 'You' : event.fromUserId;
    const feed = byId('gift-feed');
    feed.prepend(
      element(
        'li',
        { 'data-testid': 'gift-feed-item', 'data-seq': String(event.seq), 'data-gift-id': event.giftId },
        giftImage(event.giftId, name),
        element('span', {}, `${from} sent ${event.quantity} × ${name}`),
        element('span', { class: 'amount' }, `🪙 ${count(event.coins)}`),
        element('time', { datetime: event.at }, timeOf(event.at)),
      ),
    );
    while (feed.children.length > FEED_MAX_ITEMS) feed.lastElementChild?.remove();
    // Only what arrives while watching flies across the stage; what catch-up reads back (before
    // joining, or while the connection was down) is history: the feed lists it, quietly.
    if (source === 'live' || this.seenLive.delete(event.seq)) this.animate(event);
    this.scheduleLeaderboard();
    // The creator's diamonds come with the gift's transaction: a wallet push says so; the re-fetch covers a missed push.
    if (this.asCreator) scheduleWalletRefresh();
  }

  private animate(event: GiftEvent): void {
    if (this.animations >= MAX_CONCURRENT_ANIMATIONS) return;
    const layer = byId('animation-layer');
    const bubble = element(
      'div',
      { class: 'flying', 'data-testid': 'gift-animation' },
      giftImage(event.giftId, nameOf(event.giftId)),
      element('span', { class: 'label' }, `×${event.quantity}`),
    );
    bubble.style.left = `${10 + Math.round(Math.random() * 70)}%`;
    layer.append(bubble);
    this.animations += 1;
    setTimeout(() => {
      bubble.remove();
      this.animations -= 1;
    }, ANIMATION_DURATION_MS);
  }

  /** At most one leaderboard read per LEADERBOARD_REFRESH_MS while gifts arrive, and one after the last. */
  private scheduleLeaderboard(): void {
    this.statsTimers.soon ??= setTimeout(() => {
      this.statsTimers.soon = undefined;
      this.refreshLeaderboard();
    }, LEADERBOARD_REFRESH_MS);
    clearTimeout(this.statsTimers.trailing);
    this.statsTimers.trailing = setTimeout(() => this.refreshLeaderboard(), LEADERBOARD_TRAILING_MS);
  }

  /** On entering the room: the counters and the leaderboard once; then `room` messages keep the counters. */
  private refreshStats(): void {
    if (this.left) return;
    this.refreshLeaderboard();
    // The profile once on joining (API.md): the stream list's copy may be a few seconds old.
    api('GET', `/v1/creators/${encodeURIComponent(this.stream.creatorId)}`, profileSchema)
      .then((profile) => !this.left && renderProfile(profile, this.stream.creatorId))
      .catch(() => undefined);
  }

  /**
   * The counters read once per (re)connection, after the socket is open so that this viewer is
   * counted; between reads the broadcaster's `room` messages keep them, never a poll per gift.
   */
  private readCounters(): void {
    const messagesBefore = this.roomMessages;
    api('GET', `/v1/streams/${encodeURIComponent(this.streamId)}`, streamSchema)
      .then((stream) => {
        if (this.left) return;
        // A `room` message that came meanwhile is newer than this read.
        if (this.roomMessages === messagesBefore) this.showCounters(stream.viewers, stream.giftCoins);
        if (stream.status !== 'live' && !this.ended) this.markEnded();
      })
      .catch(() => undefined);
  }

  private refreshLeaderboard(): void {
    if (this.left) return;
    const id = encodeURIComponent(this.streamId);
    api('GET', `/v1/streams/${id}/leaderboard?limit=${LEADERBOARD_SIZE}`, leaderboardSchema)
      .then(({ items }) => {
        if (this.left) return;
        byId('leaderboard-empty').hidden = items.length > 0;
        byId('leaderboard').replaceChildren(
          ...items.map((item) =>
            element(
              'li',
              { 'data-testid': 'leaderboard-item', 'data-user-id': item.userId, 'data-coins': String(item.coins) },
              element('span', {}, item.userId === state.session?.userId ? `${item.userId} (you)` : item.userId),
              element('span', { class: 'amount' }, `🪙 ${count(item.coins)}`),
            ),
          ),
        );
      })
      .catch(() => undefined);
  }
}

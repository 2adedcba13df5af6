/** Streams: the lobby (viewers) and the studio (creators), and which gifts a viewer can afford. */
import { amountOf, byId, element, giftImage } from '../kit';
import { ApiError } from './words';
import { type Profile, type Stream, giftsSchema, streamSchema, streamsSchema } from './answers';
import { Room } from './room';
import { STREAMS_REFRESH_INTERVAL_MS } from './limits';
import { api } from './api';
import { notify, showError } from './notices';
import { state } from './state';
import { timeOf } from './format';

export const nameOf = (giftId: string) => state.giftCatalog.find((gift) => gift.id === giftId)?.name ?? giftId;

export async function loadGifts(): Promise<void> {
  state.giftCatalog = (await api('GET', '/v1/gifts', giftsSchema)).gifts;
  byId('gift-list').replaceChildren(
    ...state.giftCatalog.map((gift) => {
      const button = element(
        'button',
        {
          type: 'button',
          class: 'gift',
          'data-testid': `gift-${gift.id}`,
          'aria-label': `Send ${gift.name}, ${amountOf(gift.coins, 'coin')} each`,
        },
        giftImage(gift.id, gift.name),
        element('span', { class: 'name' }, gift.name),
        element('span', { class: 'cost' }, amountOf(gift.coins, 'coin')),
        element('span', { class: 'reason', 'data-testid': `gift-reason-${gift.id}` }),
      );
      button.dataset.giftId = gift.id;
      button.dataset.coins = String(gift.coins);
      button.addEventListener('click', () => {
        const quantity = Number(byId<HTMLInputElement>('gift-quantity').value);
        if (!Number.isInteger(quantity) || quantity < 1 || quantity > 99) {
          showError(
            new ApiError('VALIDATION_FAILED', 'quantity', 400, [
              { path: 'quantity', message: 'a whole number from 1 to 99' },
            ]),
          );
          return;
        }
        state.room?.sendGift(gift, quantity);
      });
      return element('li', {}, button);
    }),
  );
  renderSpendable();
}

/** Why this person cannot spend at all right now, in words; undefined when they can. */
function spendBlockedReason(): string | undefined {
  if (state.consent && !state.consent.consented)
    return state.consent.appConsent === 'revoked'
      ? 'Your guardian withdrew permission'
      : "Needs a parent's or guardian's permission";
  if (state.wallet?.locked) return 'Your wallet is locked';
  return undefined;
}

/** The gift quantity typed in, or 1 while the field does not hold a whole number from 1 to 99. */
function giftQuantity(): number {
  const quantity = Number(byId<HTMLInputElement>('gift-quantity').value);
  return Number.isInteger(quantity) && quantity >= 1 && quantity <= 99 ? quantity : 1;
}

/**
 * Buttons that spend are enabled only when the server would accept them: a gift the balance
 * cannot pay (at the quantity chosen) says how many coins are missing; a closed wallet or
 * missing consent says so on every package and gift. Re-run whenever the balance, the
 * quantity, the consent or the room changes.
 */
export function renderSpendable(): void {
  const blocked = spendBlockedReason();
  const notice = byId('buy-blocked');
  notice.hidden = blocked === undefined;
  notice.textContent = blocked ? `${blocked}: buying coins is closed.` : '';
  byId('package-list')
    .querySelectorAll('button')
    .forEach((button) => {
      button.disabled = blocked !== undefined;
    });
  const quantity = giftQuantity();
  byId('gift-list')
    .querySelectorAll<HTMLButtonElement>('button[data-gift-id]')
    .forEach((button) => {
      const cost = Number(button.dataset.coins) * quantity;
      let reason = blocked;
      if (state.room?.hasEnded) reason = 'The stream has ended';
      else if (reason === undefined && state.wallet && cost > state.wallet.coins)
        reason = `Needs ${amountOf(cost - state.wallet.coins, 'more coin')}`;
      button.disabled = reason !== undefined;
      button.title = reason ?? '';
      const text = button.querySelector<HTMLElement>('.reason');
      if (text) text.textContent = reason ?? '';
    });
}

/** A creator's credentials in a line: name, verified badge, since when, how many streams, gifts received. */
function profileFacts(profile: Profile): HTMLElement {
  const since = new Date(profile.streamingSince);
  const sinceText = Number.isNaN(since.getTime())
    ? ''
    : since.toLocaleDateString('en', { year: 'numeric', month: 'short', day: 'numeric' });
  return element(
    'span',
    { class: 'profile-facts', 'data-testid': 'creator-profile', 'data-creator-id': profile.creatorId },
    element('strong', { 'data-testid': 'creator-name' }, profile.displayName),
    ...(profile.verified
      ? [element('span', { class: 'badge verified', 'data-testid': 'creator-verified' }, '✓ Verified')]
      : []),
    element(
      'small',
      { 'data-testid': 'creator-facts' },
      [
        sinceText ? `streaming since ${sinceText}` : '',
        amountOf(profile.streams, 'stream'),
        `${amountOf(profile.giftCoinsReceived, 'coin')} in gifts received`,
      ]
        .filter(Boolean)
        .join(' · '),
    ),
  );
}

/** The room's creator, for a viewer checking before gifting; a creator without a profile yet shows by id. */
export function renderProfile(profile: Profile | undefined, creatorId: string): void {
  const box = byId('room-creator');
  box.hidden = false;
  box.replaceChildren(
    profile
      ? profileFacts(profile)
      : element('span', { class: 'profile-facts' }, element('strong', {}, creatorId), ' · new creator'),
  );
}

export async function refreshStreams(): Promise<void> {
  if (state.session?.role !== 'viewer') return;
  const { items } = await api('GET', '/v1/streams', streamsSchema);
  const live = items.filter((stream) => stream.status === 'live');
  byId('streams-empty').hidden = live.length > 0;
  byId('streams-list').replaceChildren(
    ...live.map((stream) => {
      const join = element(
        'button',
        {
          type: 'button',
          'data-testid': 'join-stream',
          'data-stream-id': stream.streamId,
          'aria-label': `Join ${stream.title} by ${stream.creator?.displayName ?? stream.creatorId}`,
        },
        'Join',
      );
      join.addEventListener('click', () => joinStream(stream, false));
      const current = state.room?.streamId === stream.streamId;
      if (current) join.textContent = 'Watching';
      return element(
        'li',
        { 'data-testid': 'stream-item', 'data-stream-id': stream.streamId },
        element('span', { class: 'live-dot', 'aria-hidden': 'true' }),
        element(
          'span',
          { class: 'stream-title' },
          element('strong', {}, stream.title),
          element('small', {}, `${stream.startedAt ? ` live since ${timeOf(stream.startedAt)}` : ''}`),
          stream.creator
            ? profileFacts(stream.creator)
            : element('span', { class: 'profile-facts' }, element('strong', {}, stream.creatorId)),
        ),
        join,
      );
    }),
  );
}

export function startStreamsRefresh(): void {
  clearInterval(state.streamsTimer);
  const epoch = state.sessionEpoch;
  state.streamsTimer = setInterval(() => {
    if (epoch !== state.sessionEpoch || document.hidden || !state.session || state.session.role !== 'viewer') return;
    refreshStreams().catch(() => undefined);
  }, STREAMS_REFRESH_INTERVAL_MS);
}

function joinStream(stream: Stream, asCreator: boolean): void {
  if (state.room?.streamId === stream.streamId) return;
  state.room?.leave();
  state.room = new Room(stream, asCreator);
  state.room.start();
  void refreshStreams().catch(() => undefined);
}

export function leaveRoom(): void {
  state.room?.leave();
  state.room = undefined;
  byId('room').hidden = true;
  void refreshStreams().catch(() => undefined);
}

export function showLiveControls(stream: Stream | undefined): void {
  byId('golive-form').hidden = stream !== undefined;
  byId('live-controls').hidden = stream === undefined;
  byId('studio-stream-title').textContent = stream?.title ?? '';
}

/** After a reload, a creator who is still live lands back in their room. */
export async function resumeOwnStream(): Promise<void> {
  if (!state.session) return;
  const userId = state.session.userId;
  const { items } = await api('GET', '/v1/streams', streamsSchema);
  const own = items.find((stream) => stream.creatorId === userId && stream.status === 'live');
  showLiveControls(own);
  if (own) joinStream(own, true);
}

export async function goLive(form: HTMLFormElement): Promise<void> {
  const title = String(new FormData(form).get('title') ?? '').trim();
  const stream = await api('POST', '/v1/streams', streamSchema, { body: { title } });
  form.reset();
  showLiveControls(stream);
  joinStream(stream, true);
  notify('You are live. Share the page with a viewer in another tab.');
}

export async function endStream(): Promise<void> {
  if (!state.room) return;
  await api('POST', `/v1/streams/${encodeURIComponent(state.room.streamId)}/end`, streamSchema);
  state.room.markEnded();
  showLiveControls(undefined);
  notify('Your stream has ended.');
}

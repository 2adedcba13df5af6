import { keys } from '../adapters/dynamo/keys';
import { offerItems, offersQuery } from '../adapters/dynamo/offer-items';
import type { Item, LedgerStore } from '../ports/ledger-store';
import { countriesWithPriceList, findPackage } from '../domain/catalog';
import { InvariantViolation, NotFoundError, ValidationError } from '../domain/errors';
import type { Caller } from '../domain/identity';
import {
  MAX_OFFER_DAYS,
  type Offer,
  type OfferKind,
  offerCoversCountry,
  offerIsOpen,
  offerRecord,
  offersOverlap,
  perCoinOrderProblems,
} from '../domain/offers';
import { auditOp } from './audit';

/**
 * Operators create, list and end offers (every change with its audit record, in one transaction);
 * the catalog shows the open ones; a recharge reads the one it names. Offers live in one
 * partition (`OFFERS`): they change a few times a month and are read whole.
 */

const DAY_MS = 24 * 60 * 60 * 1000;
/** Read per page of the offers partition; old offers stay (they are what past recharges name). */
const OFFERS_PAGE_SIZE = 100;

export interface NewOffer {
  packageId: string;
  kind: OfferKind;
  discountPercent?: number | undefined;
  bonusCoins?: number | undefined;
  countries?: string[] | undefined;
  firstRechargeOnly?: boolean | undefined;
  startsAt?: string | undefined;
  endsAt: string;
}

function parseOffer(item: Item): Offer {
  const parsed = offerRecord.safeParse(item);
  if (!parsed.success)
    throw new InvariantViolation(`offer item ${String(item.sk)} is malformed: ${parsed.error.message}`);
  return parsed.data;
}

/** Every offer, old ones included, read strongly when an operator is about to change them. */
export async function listOffers(store: LedgerStore, options: { consistent?: boolean } = {}): Promise<Offer[]> {
  const offers: Offer[] = [];
  let startKey: Parameters<LedgerStore['query']>[0]['exclusiveStartKey'];
  do {
    const page = await store.query(offersQuery(OFFERS_PAGE_SIZE, options.consistent ?? false, startKey));
    for (const item of page.items) offers.push(parseOffer(item));
    startKey = page.lastEvaluatedKey;
  } while (startKey);
  return offers.sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
}

/** The offer a recharge names, read strongly (its terms are copied into the recharge). */
export async function readOffer(store: LedgerStore, offerId: string): Promise<Offer | undefined> {
  const item = await store.getItem(keys.offer(offerId), { consistent: true });
  return item ? parseOffer(item) : undefined;
}

/** The open offer on each package for a buyer in `country` (at most one: overlaps are refused). */
export async function openOffersFor(store: LedgerStore, country: string, now: Date): Promise<Map<string, Offer>> {
  const open = new Map<string, Offer>();
  for (const offer of await listOffers(store))
    if (offerIsOpen(offer, now) && offerCoversCountry(offer, country)) open.set(offer.packageId, offer);
  return open;
}

function invalid(path: string, message: string): ValidationError {
  return new ValidationError(`The offer is not valid: ${message}.`, { details: [{ path, message }] });
}

/** Everything about a new offer that can be checked without the other offers. */
function validateNewOffer(input: NewOffer, now: Date): Omit<Offer, 'offerId' | 'createdBy' | 'createdAt'> {
  const startsAt = input.startsAt ?? now.toISOString();
  if (input.endsAt <= startsAt) throw invalid('body.endsAt', 'must be after startsAt');
  if (input.endsAt <= now.toISOString()) throw invalid('body.endsAt', 'must be in the future');
  if (Date.parse(input.endsAt) - Date.parse(startsAt) > MAX_OFFER_DAYS * DAY_MS)
    throw invalid('body.endsAt', `an offer runs at most ${MAX_OFFER_DAYS} days`);
  const countries = input.countries === undefined ? null : [...new Set(input.countries.map((c) => c.toUpperCase()))];
  const sold = new Set(countriesWithPriceList());
  for (const country of countries ?? [])
    if (!sold.has(country)) throw invalid('body.countries', `coins are not sold in ${country}`);
  // Every price list sells the same packages, so any of the offer's countries names them.
  const { coins } = findPackage(countries?.[0] ?? 'US', input.packageId);
  const discountPercent = input.discountPercent ?? 0;
  const bonusCoins = input.bonusCoins ?? 0;
  if (input.kind === 'discount' && (discountPercent < 1 || bonusCoins !== 0))
    throw invalid('body.discountPercent', 'a discount offer takes discountPercent (and no bonusCoins)');
  if (input.kind === 'bonus' && (bonusCoins < 1 || discountPercent !== 0))
    throw invalid('body.bonusCoins', 'a bonus offer takes bonusCoins (and no discountPercent)');
  if (bonusCoins > coins) throw invalid('body.bonusCoins', `at most the package's own ${coins} coins`);
  const offer = {
    packageId: input.packageId,
    kind: input.kind,
    discountPercent,
    bonusCoins,
    countries,
    firstRechargeOnly: input.firstRechargeOnly ?? false,
    startsAt,
    endsAt: input.endsAt,
  };
  const problems = perCoinOrderProblems(offer);
  if (problems.length > 0)
    throw new ValidationError('The offer would make a larger package cost more per coin than this one.', {
      details: problems.map((message) => ({ path: 'body', message })),
    });
  return offer;
}

export interface CreateOfferDeps {
  store: LedgerStore;
  now: () => Date;
  newId: (prefix: string, now: Date) => string;
}

/** POST /v1/operator/offers: validated, checked against overlapping offers, written with its audit record. */
export async function createOffer(deps: CreateOfferDeps, operator: Caller, input: NewOffer): Promise<Offer> {
  const { store } = deps;
  const now = deps.now();
  const fields = validateNewOffer(input, now);
  const clash = (await listOffers(store, { consistent: true })).find((other) => offersOverlap(other, fields));
  if (clash !== undefined)
    throw invalid('body', `it overlaps offer ${clash.offerId} on the same package, countries and time`);
  const offer: Offer = {
    offerId: deps.newId('of', now),
    ...fields,
    createdBy: operator.userId,
    createdAt: now.toISOString(),
  };
  await store.transactWrite([
    offerItems.created(store, { ...offer }),
    auditOp(
      store,
      operator,
      { action: 'offer.create', target: `offer:${offer.offerId}`, details: { ...offer } },
      now,
      deps.newId,
    ),
  ]);
  return offer;
}

/**
 * POST /v1/operator/offers/{offerId}/end: the offer stops applying now. Recharges already created
 * under it keep its terms until they are paid or expire. Ending an offer that is already over
 * answers it as it is and records nothing (nothing changed).
 */
export async function endOffer(
  deps: { store: LedgerStore; now: () => Date; newId: (prefix: string, now: Date) => string },
  operator: Caller,
  offerId: string,
): Promise<Offer> {
  const { store } = deps;
  const now = deps.now();
  const offer = await readOffer(store, offerId);
  if (offer === undefined) throw new NotFoundError('No such offer.');
  const at = now.toISOString();
  if (offer.endedAt !== undefined || offer.endsAt <= at) return offer;
  let alreadyEnded = false;
  try {
    await store.transactWrite([
      offerItems.ended(store, offerId, at, () => {
        alreadyEnded = true;
        return new NotFoundError('ended concurrently');
      }),
      auditOp(
        store,
        operator,
        { action: 'offer.end', target: `offer:${offerId}`, details: { endedAt: at } },
        now,
        deps.newId,
      ),
    ]);
  } catch (error) {
    if (!alreadyEnded) throw error;
  }
  return (await readOffer(store, offerId)) ?? offer;
}

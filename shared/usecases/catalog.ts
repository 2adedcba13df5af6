import type { LedgerStore } from '../ports/ledger-store';
import { type CoinPackage, packagesForCountry } from '../domain/catalog';
import { type Currency, type Money, money } from '../domain/money';
import { type Offer, offerClosesAt, offerTerms } from '../domain/offers';
import { type MethodOffer, methodsFor, platformFee, type PricingConfig } from '../domain/pricing';
import { openOffersFor } from './offers';

/**
 * GET /v1/packages: the country's price list, all in. A package's `price` is what a card payment
 * of it costs without an offer (the coins' value plus the platform's fee); each method adds its
 * own fee; an open offer shows its own price or bonus and when it ends. With no offers, no fees
 * and card only, every package is exactly what it was before (v1's shape).
 */

export interface PackageOffer {
  offerId: string;
  kind: Offer['kind'];
  /** The package's price under the offer (a discount lowers it; a bonus leaves it). */
  price: Money;
  bonusCoins: number;
  endsAt: string;
  firstRechargeOnly: boolean;
}

export interface CatalogPackage {
  id: string;
  coins: number;
  price: Money;
  offer?: PackageOffer;
}

export interface Catalog {
  country: string;
  currency: Currency;
  packages: CatalogPackage[];
  /** Included in every package's price (absent when there is none). */
  platformFee?: Money;
  methods: MethodOffer[];
}

function packageOffer(pkg: CoinPackage, offer: Offer, fee: Money): PackageOffer {
  const terms = offerTerms(offer, pkg);
  return {
    offerId: offer.offerId,
    kind: offer.kind,
    price: money(pkg.price.amount - terms.discountMinor + fee.amount, pkg.price.currency),
    bonusCoins: terms.bonusCoins,
    endsAt: offerClosesAt(offer),
    firstRechargeOnly: offer.firstRechargeOnly,
  };
}

export async function catalogFor(
  deps: { store: LedgerStore; pricing: PricingConfig; now: () => Date },
  country: string,
): Promise<Catalog> {
  const { currency, packages } = packagesForCountry(country);
  const fee = platformFee(deps.pricing, country);
  const offers = await openOffersFor(deps.store, country, deps.now());
  return {
    country,
    currency,
    packages: packages.map((pkg) => {
      const offer = offers.get(pkg.id);
      return {
        id: pkg.id,
        coins: pkg.coins,
        price: money(pkg.price.amount + fee.amount, currency),
        ...(offer !== undefined && { offer: packageOffer(pkg, offer, fee) }),
      };
    }),
    ...(fee.amount > 0 && { platformFee: fee }),
    methods: methodsFor(deps.pricing, country),
  };
}

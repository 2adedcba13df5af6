import { money, type Currency, type Money } from './money';
import { RegionUnavailableError, ValidationError } from './errors';

/** The coin packages every price list sells (docs/API.md, Catalog). */
export const PACKAGE_COINS = [100, 500, 1000, 5000, 10000] as const;
export type PackageCoins = (typeof PACKAGE_COINS)[number];

export interface CoinPackage {
  id: string;
  coins: number;
  price: Money;
}

/**
 * Prices in minor units, one list per currency, in PACKAGE_COINS order. A larger package never
 * costs more per coin (the unit test checks it): 10,000 coins cost ~12% less per coin than 100,
 * as with Twitch's Bits.
 */
const PRICE_LISTS: Record<Currency, readonly number[]> = {
  USD: [129, 599, 1149, 5599, 10999],
  EUR: [119, 559, 1079, 5249, 10299],
  GBP: [109, 499, 969, 4699, 9199],
};

const EURO_COUNTRIES = [
  'AT',
  'BE',
  'CY',
  'DE',
  'EE',
  'ES',
  'FI',
  'FR',
  'GR',
  'HR',
  'IE',
  'IT',
  'LT',
  'LU',
  'LV',
  'MT',
  'NL',
  'PT',
  'SI',
  'SK',
] as const;

const COUNTRY_CURRENCY: Readonly<Record<string, Currency>> = {
  US: 'USD',
  GB: 'GBP',
  ...Object.fromEntries(EURO_COUNTRIES.map((country) => [country, 'EUR' as const])),
};

/** Every country with a price list, upper case. */
export function countriesWithPriceList(): string[] {
  return Object.keys(COUNTRY_CURRENCY);
}

export function packageId(coins: number): string {
  return `coins_${coins}`;
}

/** The currency of a country's price list, or REGION_UNAVAILABLE. */
export function currencyForCountry(country: string): Currency {
  const currency = COUNTRY_CURRENCY[country.toUpperCase()];
  if (currency === undefined) throw new RegionUnavailableError(`Coins are not sold in country '${country}'.`);
  return currency;
}

export function packagesForCountry(country: string): { currency: Currency; packages: CoinPackage[] } {
  const currency = currencyForCountry(country);
  const prices = PRICE_LISTS[currency];
  const packages = PACKAGE_COINS.map((coins, index) => {
    const amount = prices[index];
    if (amount === undefined) throw new Error(`price list ${currency} has no price for ${coins} coins`);
    // Through money(): a configured price that is not a whole number of minor units fails loudly.
    return { id: packageId(coins), coins, price: money(amount, currency) };
  });
  return { currency, packages };
}

export function findPackage(country: string, id: string): CoinPackage {
  const found = packagesForCountry(country).packages.find((candidate) => candidate.id === id);
  if (found === undefined) {
    throw new ValidationError('Unknown package.', { details: [{ path: 'packageId', message: `no package '${id}'` }] });
  }
  return found;
}

export interface Gift {
  id: string;
  name: string;
  coins: number;
}

/** The default gift catalog: from a 1-coin rose to a 30,000-coin universe. */
export const GIFTS: readonly Gift[] = [
  { id: 'rose', name: 'Rose', coins: 1 },
  { id: 'heart', name: 'Heart', coins: 5 },
  { id: 'ice_cream', name: 'Ice Cream', coins: 10 },
  { id: 'star', name: 'Star', coins: 99 },
  { id: 'rocket', name: 'Rocket', coins: 500 },
  { id: 'lion', name: 'Lion', coins: 1000 },
  { id: 'castle', name: 'Castle', coins: 10000 },
  { id: 'universe', name: 'Universe', coins: 30000 },
];

export function findGift(id: string): Gift {
  const gift = GIFTS.find((candidate) => candidate.id === id);
  if (gift === undefined) {
    throw new ValidationError('Unknown gift.', { details: [{ path: 'giftId', message: `no gift '${id}'` }] });
  }
  return gift;
}

/**
 * What the page's parts share: DOM helpers, numbers in words, the gifts' pictures, and the
 * `PageKit` a part of the page (the guardian flow in guardian.ts; an operator's desk) receives
 * from app.ts instead of reaching into its state: the API client, the notices, who is signed in.
 */
import type * as z from 'zod/mini';

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (!element) throw new Error(`the page has no #${id}`);
  return element as T;
}

export function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Record<string, string> = {},
  ...children: Array<Node | string>
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

const integerFormat = new Intl.NumberFormat('en');
export const count = (value: number) => integerFormat.format(value);

const pluralRules = new Intl.PluralRules('en');
/** Plural forms of the units the page counts; English adds an s to each. */
const UNITS = {
  coin: 'coins',
  diamond: 'diamonds',
  gift: 'gifts',
  viewer: 'viewers',
  stream: 'streams',
  request: 'requests',
  'more coin': 'more coins',
  'more gift': 'more gifts',
} as const;
export type Unit = keyof typeof UNITS;

/** "1 coin", "2 coins", "1,000 coins": the number with the unit in the form English uses for it. */
export function amountOf(value: number, unit: Unit): string {
  return `${count(value)} ${pluralRules.select(value) === 'one' ? unit : UNITS[unit]}`;
}

/** Catalog ids that have a picture in infra/local/web/gifts; any other gift shows the generic box. */
const GIFT_PICTURES: ReadonlySet<string> = new Set([
  'rose',
  'heart',
  'ice_cream',
  'star',
  'rocket',
  'lion',
  'castle',
  'universe',
]);

/** A gift's picture: an SVG the local server ships (build.ts), drawn the same on every machine. */
export function giftImage(giftId: string, name: string, decorative = true): HTMLImageElement {
  const file = GIFT_PICTURES.has(giftId) ? giftId : 'gift';
  return element('img', {
    class: 'gift-image',
    src: `/gifts/${file}.svg`,
    alt: decorative ? '' : name,
    width: '32',
    height: '32',
    'data-testid': 'gift-image',
    'data-gift-id': giftId,
  });
}

export interface CallOptions {
  body?: unknown;
  idempotencyKey?: string;
}

/** The network did not answer at all (offline, refused): callers say so in their own words. */
export class NetworkUnreachable extends Error {}

/**
 * One HTTP call with the API's conventions: bearer token, JSON body, idempotency key. Answers the
 * response and its body parsed as JSON (undefined when empty or not JSON); throws only
 * NetworkUnreachable. Callers judge the status and the body.
 */
export async function sendJson(
  method: string,
  path: string,
  options: CallOptions & { token?: string | null },
): Promise<{ response: Response; json: unknown }> {
  const headers: Record<string, string> = {};
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  if (options.idempotencyKey) headers['idempotency-key'] = options.idempotencyKey;
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      ...(options.body !== undefined && { body: JSON.stringify(options.body) }),
    });
  } catch {
    throw new NetworkUnreachable(`${method} ${path}`);
  }
  const text = await response.text();
  try {
    return { response, json: text === '' ? undefined : JSON.parse(text) };
  } catch {
    return { response, json: undefined };
  }
}

/** The page's API client: parses the answer with `schema`, throws the contract's error as an ApiError. */
export type Api = <S extends z.ZodMiniType>(
  method: string,
  path: string,
  schema: S,
  options?: CallOptions,
) => Promise<z.infer<S>>;

export interface PageKit {
  api: Api;
  notify(text: string): void;
  showError(error: unknown): void;
  /** The signed-in user's id, or undefined after sign-out. */
  userId(): string | undefined;
  /** Changes at every sign-out: work started for an earlier session checks it before touching the page. */
  epoch(): number;
  /** Runs a button's action with the button disabled, showing any error in words. */
  busy(button: HTMLButtonElement, action: () => Promise<void>): Promise<void>;
}

import { build } from 'esbuild';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openApiJson, buildOpenApiDocument } from '../../../shared/http/openapi';
import { HTTP_ROUTES } from '../../routes';
import type { StaticRoute } from '../gateway';
import { renderDocsPage } from './docs';

/** Where index.html asks for the WebSocket endpoint; filled in per request (ports are chosen at start). */
const WS_URL_PLACEHOLDER = '%WS_URL%';
/** Where index.html asks for the Event API's HTTP endpoint (Amplify's API.Events.endpoint). */
const EVENTS_URL_PLACEHOLDER = '%EVENTS_URL%';

export interface WebApp {
  html: string;
  js: string;
  css: string;
  /** The gifts' pictures (infra/local/web/gifts/<giftId>.svg), by file name: drawn, not emoji, so no font is needed. */
  giftImages: ReadonlyMap<string, string>;
}

/** Where the page asks for a gift's picture: `/gifts/<giftId>.svg`. */
export const GIFT_IMAGES_PATH = '/gifts/';
const GIFT_IMAGES_DIR = join(__dirname, 'gifts');

async function readGiftImages(): Promise<Map<string, string>> {
  const names = (await readdir(GIFT_IMAGES_DIR)).filter((name) => name.endsWith('.svg'));
  const images = await Promise.all(
    names.map(async (name) => [name, await readFile(join(GIFT_IMAGES_DIR, name), 'utf8')] as const),
  );
  return new Map(images);
}

/**
 * Bundles the demo page (app.ts, browser TypeScript) with esbuild at start: minified, ES2020,
 * one IIFE, no source map (the page is a demo; the bundle stays small). Takes a few tens of ms.
 */
export async function buildWebApp(): Promise<WebApp> {
  const [html, css, giftImages, bundle] = await Promise.all([
    readFile(join(__dirname, 'index.html'), 'utf8'),
    readFile(join(__dirname, 'styles.css'), 'utf8'),
    readGiftImages(),
    build({
      entryPoints: [join(__dirname, 'app.ts')],
      bundle: true,
      minify: true,
      target: 'es2020',
      format: 'iife',
      platform: 'browser',
      write: false,
      legalComments: 'none',
      logLevel: 'silent',
    }),
  ]);
  const output = bundle.outputFiles[0];
  if (!output) throw new Error('esbuild produced no bundle for infra/local/web/app.ts');
  return { html, js: output.text, css, giftImages };
}

function escapeAttribute(value: string): string {
  return value.replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);
}

/**
 * The local stack's static routes for the page and the docs: `/`, `/app.js`, `/styles.css`, `/gifts/*.svg`,
 * `/openapi.json` and `/docs`. `wsUrl` is read per request, as the gateway picks its ports
 * after the routes are declared. The OpenAPI document is built on first request, once every
 * handler can load.
 */
export async function webStaticRoutes(wsUrl: () => string, eventsUrl: () => string = () => ''): Promise<StaticRoute[]> {
  const app = await buildWebApp();
  let docs: string | undefined;
  return [
    {
      path: '/',
      contentType: 'text/html; charset=utf-8',
      body: () =>
        app.html
          .replace(WS_URL_PLACEHOLDER, escapeAttribute(wsUrl()))
          .replace(EVENTS_URL_PLACEHOLDER, escapeAttribute(eventsUrl())),
    },
    { path: '/app.js', contentType: 'text/javascript; charset=utf-8', body: () => app.js },
    { path: '/styles.css', contentType: 'text/css; charset=utf-8', body: () => app.css },
    ...Array.from(app.giftImages, ([name, svg]) => ({
      path: `${GIFT_IMAGES_PATH}${name}`,
      contentType: 'image/svg+xml; charset=utf-8',
      body: () => svg,
    })),
    { path: '/openapi.json', contentType: 'application/json; charset=utf-8', body: () => openApiJson(HTTP_ROUTES) },
    {
      path: '/docs',
      contentType: 'text/html; charset=utf-8',
      body: () => (docs ??= renderDocsPage(buildOpenApiDocument(HTTP_ROUTES))),
    },
  ];
}

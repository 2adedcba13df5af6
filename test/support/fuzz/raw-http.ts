import { Agent, request as httpRequest } from 'node:http';
import type { HttpRoute } from '../../../infra/routes';
import { toJsonText } from './arbitraries';
import { type BodyCase, type FuzzedHttpCase, signatureHeader } from './http-cases';

/** A fuzzed case as bytes on the wire, and a client that sends them exactly. */

export function bodyBytes(body: BodyCase): Buffer | undefined {
  switch (body.kind) {
    case 'none':
      return undefined;
    case 'json':
      return Buffer.from(toJsonText(body.value), 'utf8');
    case 'text':
      return Buffer.from(body.text, 'utf8');
    case 'bytes':
      return Buffer.from(body.bytes);
    case 'oversized': {
      if (body.shape === 'padded-json')
        return Buffer.concat([Buffer.from('{"a":1}'), Buffer.alloc(body.bytes - 7, 0x20)]);
      if (body.shape === 'string') return Buffer.from(`"${'x'.repeat(body.bytes - 2)}"`);
      // Fewer characters than bytes: a limit counted in characters would let it through.
      const euros = Math.ceil((body.bytes - 2) / 3);
      return Buffer.from(`"${'€'.repeat(euros)}"`);
    }
  }
}

export interface RawRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[]>;
  body?: Buffer;
}

export function materialize(route: HttpRoute, fuzzed: FuzzedHttpCase): RawRequest {
  const path = route.path.replace(/\{([A-Za-z0-9_]+)\}/g, (_, name: string) => fuzzed.pathSegments[name] ?? '');
  const body = bodyBytes(fuzzed.body);
  const headers = { ...fuzzed.headers };
  if (fuzzed.stripeSignature) {
    const signature = signatureHeader(fuzzed.stripeSignature, body ?? Buffer.alloc(0));
    if (signature !== undefined) headers['stripe-signature'] = signature;
  }
  return {
    method: route.method,
    path: `${path}${fuzzed.query ? `?${fuzzed.query}` : ''}`,
    headers,
    ...(body && { body }),
  };
}

// ---------------------------------------------------------------- raw HTTP client

export interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** Keep-alive sockets: thousands of requests without thousands of TCP handshakes. */
const agent = new Agent({ keepAlive: true, maxSockets: 64 });

/**
 * Sends exactly what it is given: node:http, not fetch, so headers can repeat, the path is not
 * normalized, and the body bytes are not re-encoded.
 */
export function sendRaw(baseUrl: string, raw: RawRequest, timeoutMs = 30_000): Promise<RawAnswer> {
  const url = new URL(baseUrl);
  return new Promise((resolvePromise, reject) => {
    // An explicit length: node:http sends a GET body without one, which the server reads as the next request.
    const headers = raw.body ? { ...raw.headers, 'content-length': String(raw.body.length) } : raw.headers;
    const request = httpRequest(
      { host: url.hostname, port: url.port, method: raw.method, path: raw.path, headers, agent, timeout: timeoutMs },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolvePromise({
            status: response.statusCode ?? 0,
            headers: response.headers,
            text: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        response.on('error', reject);
      },
    );
    request.on('timeout', () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    request.on('error', reject);
    request.end(raw.body);
  });
}

export function closeFuzzAgent(): void {
  agent.destroy();
}

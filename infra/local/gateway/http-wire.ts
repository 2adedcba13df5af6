import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';

/**
 * What both of the gateway's servers (the HTTP API, and the WebSocket API with its @connections
 * API) do with raw HTTP: read bodies under a limit, flatten headers and queries as API Gateway
 * hands them to Lambda, and write a Lambda's structured answer back.
 */

/** The one stage the local APIs serve, as the CDK app's `$default` stage. */
export const STAGE = '$default';

export function send(response: ServerResponse, result: APIGatewayProxyStructuredResultV2 | undefined): void {
  const status = result?.statusCode ?? 200;
  const headers: Record<string, string> = {};
  for (const [key, value] of Object.entries(result?.headers ?? {})) headers[key] = String(value);
  const body =
    result?.body === undefined ? '' : result.isBase64Encoded ? Buffer.from(result.body, 'base64') : result.body;
  response.writeHead(status, headers);
  response.end(body);
}

/** The body, or 'too-large' as soon as it passes `limit` (the rest is not buffered). */
export async function readBody(request: IncomingMessage, limit: number): Promise<Buffer | 'too-large'> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > limit) return 'too-large';
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}

export function singleValueHeaders(request: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [key, value] of Object.entries(request.headers)) {
    if (value === undefined) continue;
    // API Gateway (payload 2.0) joins repeated headers with commas.
    headers[key.toLowerCase()] = Array.isArray(value) ? value.join(',') : value;
  }
  return headers;
}

export function queryParameters(url: URL): Record<string, string> | undefined {
  const result: Record<string, string> = {};
  for (const key of new Set(url.searchParams.keys())) result[key] = url.searchParams.getAll(key).join(',');
  return Object.keys(result).length > 0 ? result : undefined;
}

/** The peer's address, as API Gateway reports it in `sourceIp`. */
export function sourceIpOf(request: IncomingMessage): string {
  return request.socket.remoteAddress ?? '127.0.0.1';
}

/** Listens on 127.0.0.1 and resolves with the port actually bound (`port` 0 picks a free one). */
export function listen(server: Server, port: number): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : port);
    });
  });
}

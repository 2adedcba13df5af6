import { Logger } from '@aws-lambda-powertools/logger';

/**
 * One structured JSON logger per process. Handlers add a `correlationId` per request or queue
 * message (see shared/http/handler.ts) and remove it when done. Never log tokens, secrets or
 * card data: log ids.
 */
export const logger = new Logger({
  serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'live-gifting',
  logLevel: (process.env.LOG_LEVEL as 'DEBUG' | 'INFO' | 'WARN' | 'ERROR' | 'SILENT' | undefined) ?? 'INFO',
});

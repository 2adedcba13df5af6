import { LogFormatter, LogItem, Logger } from '@aws-lambda-powertools/logger';
import type { LogAttributes, UnformattedAttributes } from '@aws-lambda-powertools/logger/types';
import { currentInvocation } from './observability/invocation';

/**
 * Powertools' standard keys, with the Lambda context and the log keys taken from the current
 * invocation (shared/observability/invocation.ts) rather than from the logger: the logger is one
 * per process, and `appendKeys`/`addContext` on it would be shared by concurrent invocations.
 */
class InvocationLogFormatter extends LogFormatter {
  override formatAttributes(attributes: UnformattedAttributes, additionalLogAttributes: LogAttributes): LogItem {
    const invocation = currentInvocation();
    const lambda = invocation?.lambda ?? attributes.lambdaContext;
    const traceRoot = invocation?.traceHeader?.match(/Root=([^;]+)/)?.[1];
    return new LogItem({
      attributes: {
        level: attributes.logLevel,
        message: attributes.message,
        timestamp: this.formatTimestamp(attributes.timestamp),
        service: attributes.serviceName,
        cold_start: lambda?.coldStart,
        function_arn: lambda?.invokedFunctionArn,
        function_memory_size: lambda?.memoryLimitInMB,
        function_name: lambda?.functionName,
        function_request_id: lambda?.awsRequestId,
        sampling_rate: attributes.sampleRateValue,
        xray_trace_id: traceRoot ?? attributes.xRayTraceId,
      },
    }).addAttributes({ ...invocation?.keys, ...additionalLogAttributes });
  }
}

/**
 * One structured JSON logger per process. Every line carries the invocation's cold start,
 * function name, request id and correlation id (handlers start an invocation with
 * `runInvocation`/`instrumented`, and scope more keys with `withLogKeys`). Never log tokens,
 * secrets or card data: log ids.
 */
export const logger = new Logger({
  serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'live-gifting',
  logLevel: (process.env.LOG_LEVEL as 'DEBUG' | 'INFO' | 'WARN' | 'ERROR' | 'SILENT' | undefined) ?? 'INFO',
  logFormatter: new InvocationLogFormatter(),
});

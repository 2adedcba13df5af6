/**
 * What a gift and a viewer-hour cost on AWS, from the benchmark's measured units and calls, at
 * list prices (us-east-1, on-demand, no free tier). The README names each price and its source;
 * `asOf` is the day they were checked.
 */
export const PRICES = {
  asOf: '2026-11-30',
  region: 'us-east-1',
  httpApiPerMillionRequests: 1.0,
  webSocketPerMillionMessages: 1.0,
  webSocketPerMillionConnectionMinutes: 0.25,
  lambdaArmPerGbSecond: 0.0000133334,
  lambdaPerMillionRequests: 0.2,
  dynamoPerMillionWriteUnits: 0.625,
  dynamoPerMillionReadUnits: 0.125,
  sqsFifoPerMillionRequests: 0.5,
} as const;

/** The gift function's memory (infra/constructs/app-function.ts DEFAULT_MEMORY_MB). */
const GIFT_MEMORY_GB = 512 / 1024;
/**
 * The broadcaster's share of a gift: one invocation per received message, each about a window
 * long (it waits out the frame window), at the same memory.
 */
const BROADCASTER_MS_PER_MESSAGE = 600;
/** A received message is one ReceiveMessage share and one DeleteMessage request. */
const SQS_REQUESTS_PER_RECEIVED_MESSAGE = 2;

export interface CostInputs {
  giftWcu: number;
  broadcastWcuPerGift: number;
  giftRcu: number;
  /** The gift function's measured duration (the HTTP p50 locally is an upper bound of its handler time). */
  giftLambdaMs: number;
  sqsSendsPerGift: number;
  sqsMessagesPerGift: number;
  postsPerViewerPerS: number;
}

const perMillion = (price: number, count: number) => (price * count) / 1_000_000;
const round = (value: number, digits: number) => Math.round(value * 10 ** digits) / 10 ** digits;

export function costFigures(inputs: CostInputs) {
  const million = 1_000_000;
  const lambdaGbSeconds =
    million *
    (GIFT_MEMORY_GB * (inputs.giftLambdaMs / 1000) +
      inputs.sqsMessagesPerGift * GIFT_MEMORY_GB * (BROADCASTER_MS_PER_MESSAGE / 1000));
  const parts = {
    httpApi: perMillion(PRICES.httpApiPerMillionRequests, million),
    lambdaRequests: perMillion(PRICES.lambdaPerMillionRequests, million * (1 + inputs.sqsMessagesPerGift)),
    lambdaDuration: lambdaGbSeconds * PRICES.lambdaArmPerGbSecond,
    dynamoWrites: perMillion(
      PRICES.dynamoPerMillionWriteUnits,
      million * (inputs.giftWcu + inputs.broadcastWcuPerGift),
    ),
    dynamoReads: perMillion(PRICES.dynamoPerMillionReadUnits, million * inputs.giftRcu),
    sqs: perMillion(
      PRICES.sqsFifoPerMillionRequests,
      million * (inputs.sqsSendsPerGift + inputs.sqsMessagesPerGift * SQS_REQUESTS_PER_RECEIVED_MESSAGE),
    ),
  };
  const usdPerMillionGifts = Object.values(parts).reduce((sum, part) => sum + part, 0);
  const viewerHour = {
    connectionMinutes: perMillion(PRICES.webSocketPerMillionConnectionMinutes, 60),
    messages: perMillion(PRICES.webSocketPerMillionMessages, inputs.postsPerViewerPerS * 3600),
  };
  return {
    usdPerMillionGifts: round(usdPerMillionGifts, 2),
    usdPerViewerHour: round(viewerHour.connectionMinutes + viewerHour.messages, 5),
    perMillionGifts: Object.fromEntries(Object.entries(parts).map(([name, value]) => [name, round(value, 3)])),
    perViewerHour: Object.fromEntries(Object.entries(viewerHour).map(([name, value]) => [name, round(value, 6)])),
    prices: PRICES,
    assumptions: `gift Lambda ${GIFT_MEMORY_GB * 1024} MB for the measured gift p50; broadcaster ${BROADCASTER_MS_PER_MESSAGE} ms per received message; frames of at most 32 KB (one message each)`,
  };
}

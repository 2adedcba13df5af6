/**
 * Creator payouts (docs/API.md, Creator payouts; docs/DESIGN.md, Money rules: outbox).
 *
 * request  -> one transaction moves diamonds from available to pending and writes the payout
 *             (status `requested`, in the sparse `byStatus` index), its entry and the idempotency
 *             record; then the payout id goes to SQS. A lost message is found by the sweeper.
 * worker   -> marks the payout `processing`, makes the Stripe transfer with the payout id as its
 *             idempotency key, then settles in one transaction whose condition (status is still
 *             `processing`) lets exactly one delivery settle: `paid` (pending goes out) or, on a
 *             permanent refusal, `failed` (the diamonds come back).
 * sweeper  -> sends open payouts again when nothing moved them for a while.
 *
 * record.ts: the payout item, its view and its entries; request.ts, process.ts (the worker),
 * sweep.ts (the sweeper) and read.ts (GET /v1/payouts, GET /v1/payouts/{payoutId}).
 */
export * from './process';
export * from './read';
export * from './record';
export * from './request';
export * from './sweep';

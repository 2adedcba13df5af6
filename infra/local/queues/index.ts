/**
 * SQS and Lambda's event source mapping on one machine: sqs.ts runs fauxqs in a child process and
 * creates the queues; event-source-mapping.ts polls them and invokes the consumers as Lambda does.
 */
export * from './event-source-mapping';
export * from './sqs';

/** The clock the use cases take as a port, so tests can fix it (ids come from ids.ts). */
export interface Clock {
  now(): Date;
}
export const systemClock: Clock = { now: () => new Date() };

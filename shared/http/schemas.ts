import * as z from 'zod';
import { decodeCursor } from '../usecases/wallet';

/** Shared request pieces, so every list route pages the same way. */
export const pageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(50),
  cursor: z
    .string()
    .max(1024)
    .refine((cursor) => decodeCursor(cursor) !== undefined, 'not a cursor this API gave out')
    .optional(),
});

export const countryQuery = z.object({ country: z.string().regex(/^[A-Za-z]{2}$/, 'an ISO 3166-1 alpha-2 code') });

/** Ids are opaque strings; bounded so no key ever exceeds DynamoDB's limits. */
export const opaqueId = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9_\-:.]+$/, 'not a valid id');

/** A user id as the identity provider issues it (`sub`): any printable text, `auth0|123` included. */
export const userIdSchema = z
  .string()
  .min(1)
  .max(255)
  .refine((value) => ![...value].some((char) => char < ' ' || char === '\u007f'), 'not a valid user id');

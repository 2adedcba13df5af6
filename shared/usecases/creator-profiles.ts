import * as z from 'zod';
import { profileItems, profileKey } from '../adapters/dynamo/profile-items';
import type { LedgerStore } from '../ports/ledger-store';
import { NotFoundError } from '../domain/errors';
import type { Caller } from '../domain/identity';
import { auditOp } from './audit';

/**
 * A creator's public profile: what a viewer checks before sending a gift. It is kept on an item of
 * its own, written when the creator goes live (streams, since when) and by the broadcaster once
 * per broadcast window (the coins of the gifts it numbered), never per gift: a famous creator's
 * profile then takes a write or two a second, whatever the gift rate. `verified` is granted by
 * operators only.
 */

export interface CreatorProfile {
  creatorId: string;
  displayName: string;
  streamingSince: string;
  streams: number;
  verified: boolean;
  /** Coins of the gifts received, as far as broadcast (it may lag the gifts by a window). */
  giftCoinsReceived: number;
}

export const MAX_DISPLAY_NAME_LENGTH = 50;

const profileItem = z.object({
  creatorId: z.string(),
  displayName: z.string().optional(),
  streamingSince: z.string(),
  streams: z.number().int().nonnegative(),
  verified: z.boolean().optional(),
  giftCoinsReceived: z.number().int().nonnegative().optional(),
});

function profileFrom(item: unknown): CreatorProfile | undefined {
  const parsed = profileItem.safeParse(item);
  if (!parsed.success) return undefined;
  const profile = parsed.data;
  return {
    creatorId: profile.creatorId,
    displayName: profile.displayName ?? profile.creatorId,
    streamingSince: profile.streamingSince,
    streams: profile.streams,
    verified: profile.verified === true,
    giftCoinsReceived: profile.giftCoinsReceived ?? 0,
  };
}

/** A creator's profile, or NOT_FOUND for someone who never went live. */
async function readProfile(store: LedgerStore, creatorId: string, consistent = false): Promise<CreatorProfile> {
  const profile = profileFrom(await store.getItem(profileKey(creatorId), { consistent }));
  if (!profile) throw new NotFoundError('No such creator.');
  return profile;
}

/** GET /v1/creators/{creatorId}: a creator who never went live has no profile (NOT_FOUND). */
export async function getCreatorProfile(deps: { store: LedgerStore }, creatorId: string): Promise<CreatorProfile> {
  return readProfile(deps.store, creatorId);
}

/** Profiles of several creators at once (the stream list), by creator id. */
export async function readProfiles(store: LedgerStore, creatorIds: string[]): Promise<Map<string, CreatorProfile>> {
  const unique = [...new Set(creatorIds)];
  const profiles = new Map<string, CreatorProfile>();
  if (unique.length === 0) return profiles;
  for (const item of await store.batchGet(unique.map(profileKey))) {
    const profile = profileFrom(item);
    if (profile) profiles.set(profile.creatorId, profile);
  }
  return profiles;
}

/** PUT /v1/creator/profile { displayName }: a creator names themselves (after going live once). */
export async function setDisplayName(
  deps: { store: LedgerStore },
  caller: Caller,
  displayName: string,
): Promise<CreatorProfile> {
  await deps.store.transactWrite([
    profileItems.named(
      deps.store,
      caller.userId,
      displayName,
      () => new NotFoundError('Go live once before naming your profile.'),
    ),
  ]);
  return readProfile(deps.store, caller.userId, true);
}

/**
 * PUT /v1/operator/creators/{creatorId}/verified { verified } (operators only): grants or
 * withdraws the badge, with its audit record in the same transaction.
 */
export async function setVerified(
  deps: { store: LedgerStore; now: () => Date; newId: (prefix: string, now: Date) => string },
  operator: Caller,
  creatorId: string,
  verified: boolean,
): Promise<CreatorProfile> {
  await deps.store.transactWrite([
    profileItems.verified(deps.store, creatorId, verified, () => new NotFoundError('No such creator.')),
    auditOp(
      deps.store,
      operator,
      {
        action: verified ? 'creator.verify' : 'creator.unverify',
        target: `creator:${creatorId}`,
        details: { verified },
      },
      deps.now(),
      deps.newId,
    ),
  ]);
  return readProfile(deps.store, creatorId, true);
}

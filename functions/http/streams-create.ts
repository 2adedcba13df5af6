import * as z from 'zod';
import { ledgerDeps } from '../../shared/adapters/clients';
import { ledgerConfig } from '../../shared/config';
import { streamCreatedAnswer } from '../../shared/http/answers';
import { httpRoute } from '../../shared/http/route';
import { createStream, MAX_TITLE_LENGTH } from '../../shared/usecases/streams';
import { declaredHttpRoute } from '../../infra/routes';

/** POST /v1/streams { title }: go live (majority only). */
export const handler = httpRoute(declaredHttpRoute('StreamsCreate'), {
  body: z.object({ title: z.string().trim().min(1).max(MAX_TITLE_LENGTH) }),
  response: { status: 201, schema: streamCreatedAnswer },
  handle: async ({ caller, body }) => ({
    status: 201,
    body: await createStream({ ...ledgerDeps(), creatorShards: ledgerConfig().creatorShards }, caller, {
      title: body.title,
    }),
  }),
});

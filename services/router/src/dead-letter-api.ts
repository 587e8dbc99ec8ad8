import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HttpError, HttpErrorCode } from '@alert-hub/runtime';
import { AGENCY_ID_FORM } from '@alert-hub/core';
import type { DeadLetters } from './dead-letters.js';

/** Who called: a coordinator (metadata only) or an operator (content and requeue too). */
export interface DeadLetterCaller {
  readonly name: string;
  readonly operator: boolean;
}

function sequence(v: unknown, pointer: string): number {
  if (typeof v !== 'string' || !/^[1-9]\d{0,14}$/.test(v))
    throw new HttpError(HttpErrorCode.BadRequest, 'invalid request', [
      { pointer, message: 'must be a positive integer (a dead-letter stream sequence)' },
    ]);
  return Number(v);
}

/**
 * `/v1/deadletters`: list (`?after=&limit=&origin=`), show one (`/:seq`, with `?body=true` the
 * alert itself, operators only), requeue one (`POST /:seq/requeue`, operators only). Coordinators
 * see the metadata: headers, reason, the envelope's protected headers, never the alert's content.
 */
export function registerDeadLetterRoutes(
  app: FastifyInstance,
  deps: {
    readonly deadLetters: DeadLetters;
    readonly caller: (req: FastifyRequest) => DeadLetterCaller | undefined;
  },
): void {
  const authenticate = (req: FastifyRequest, operatorOnly: string | undefined) => {
    const who = deps.caller(req);
    if (!who)
      throw new HttpError(
        HttpErrorCode.Unauthenticated,
        'a coordinator or operator bearer token is required',
      );
    if (operatorOnly && !who.operator)
      throw new HttpError(
        HttpErrorCode.Forbidden,
        `${operatorOnly}: an operator token is required`,
      );
    return who;
  };
  // Who calls is settled before anything of the request is read (its query, its parameters, a
  // body sent with a requeue): a caller without a token learns nothing but 401.
  // The handler asks again for its name (a hash of the token, no more).
  const requireCaller = (operatorOnly?: string) => ({
    onRequest: async (req: FastifyRequest) => {
      authenticate(req, operatorOnly);
    },
  });

  app.get('/v1/deadletters', requireCaller(), async (req) => {
    const who = authenticate(req, undefined);
    const q = req.query as Record<string, unknown>;
    const limit = q['limit'] === undefined ? 100 : sequence(q['limit'], '/query/limit');
    const after =
      q['after'] === undefined || q['after'] === '0' ? 0 : sequence(q['after'], '/query/after');
    const origin = q['origin'];
    if (
      origin !== undefined &&
      (typeof origin !== 'string' || (origin !== 'unknown' && !AGENCY_ID_FORM.test(origin)))
    )
      throw new HttpError(HttpErrorCode.BadRequest, 'invalid request', [
        { pointer: '/query/origin', message: 'must be an agency id (or unknown)' },
      ]);
    req.log.info({ caller: who.name, after, limit }, 'dead letters listed');
    const page = await deps.deadLetters.list({
      after,
      limit,
      ...(origin === undefined ? {} : { origin }),
    });
    return { ...page, count: page.items.length };
  });

  app.get('/v1/deadletters/:seq', requireCaller(), async (req) => {
    const seq = sequence((req.params as { seq?: unknown }).seq, '/params/seq');
    const body = (req.query as Record<string, unknown>)['body'];
    if (body !== undefined && body !== 'true' && body !== 'false')
      throw new HttpError(HttpErrorCode.BadRequest, 'invalid request', [
        { pointer: '/query/body', message: 'must be true or false' },
      ]);
    const withBody = body === 'true';
    const who = authenticate(req, withBody ? "a dead letter's content" : undefined);
    req.log.info({ caller: who.name, deadLetterSeq: seq, withBody }, 'dead letter read');
    return deps.deadLetters.show(seq, withBody);
  });

  app.post(
    '/v1/deadletters/:seq/requeue',
    requireCaller('requeueing a dead letter'),
    async (req) => {
      const seq = sequence((req.params as { seq?: unknown }).seq, '/params/seq');
      return deps.deadLetters.requeue(seq, authenticate(req, 'requeueing a dead letter').name);
    },
  );
}

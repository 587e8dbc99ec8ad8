import { createHash } from 'node:crypto';
import {
  AlertHubError,
  DEFAULT_MAX_CLOCK_SKEW_MS,
  ErrorCode,
  MAX_INBOUND_ENVELOPE_BYTES,
  canonicalJson,
  encodeEnvelope,
  inboundMsgId,
  inboundSubject,
  newAlertId,
  normaliseAlert,
  signAlert,
  timeOf,
  type Alert,
  type Normalisation,
  type SchemaRegistry,
  type SigningKey,
  type TrustStore,
} from '@alert-hub/core';
import type { BatchWriter, Logger } from '@alert-hub/runtime';
import { GatewayError, HTTP_STATUS } from './errors.js';
import type { GatewayMetrics } from './metrics.js';
import type { NatsLink } from './nats-link.js';
import type { GatewayStore, SentReceipt } from './store.js';

/** How many unconfirmed publishes the gateway remembers for a resend after a 503. */
const MAX_UNCONFIRMED = 10_000;

/** What the gateway answers when it accepted an alert: JetStream has stored it. */
export interface Receipt {
  readonly id: string;
  /** Sequence of the alert in the inbound stream. */
  readonly sequence: number;
  /** True when this id was already accepted: the original receipt is returned. */
  readonly duplicate: boolean;
  /**
   * Identifiers the gateway rewrote into machine form before validating and signing
   * (`CSQU 305438 3` to `CSQU3054383`); present only when there were any. The signed alert
   * carries the `to` values.
   */
  readonly normalised?: readonly Normalisation[];
}

export interface IntakeDeps {
  readonly agency: string;
  readonly registry: SchemaRegistry;
  readonly signingKey: () => SigningKey;
  /** The trust store as this gateway loaded it; the signing key is checked against it before 202. */
  readonly trust?: () => TrustStore;
  readonly store: GatewayStore;
  readonly receipts: BatchWriter<SentReceipt>;
  readonly nats: NatsLink;
  readonly metrics: GatewayMetrics;
  readonly log: Logger;
  /** Most alerts processed at once; more are refused with ERR_OVERLOADED (memory stays bounded). */
  readonly maxInFlight: number;
  readonly now?: () => Date;
}

/**
 * The intake path: check, complete, validate, sign, encode, publish. An alert is accepted only
 * once JetStream acknowledged it; any refusal happens before anything is sent.
 */

/** SHA-256 (hex) of a submitted alert's canonical JSON: what a resend is compared by. */
function contentDigest(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex');
}

export class Intake {
  readonly #d: IntakeDeps;
  #inFlight = 0;
  constructor(deps: IntakeDeps) {
    this.#d = deps;
  }

  /** Alerts being processed now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /**
   * Submits one alert on behalf of API client `client`. Throws a `GatewayError` when refused.
   * `body` comes from the HTTP layer's strict parsers, which already refused invalid UTF-8,
   * excessive depth and prototype keys anywhere in the request.
   */
  async submit(body: unknown, client: string): Promise<Receipt> {
    if (this.#inFlight >= this.#d.maxInFlight) {
      this.#d.metrics.rejected.inc({ reason: 'ERR_OVERLOADED' });
      throw new GatewayError(
        'ERR_OVERLOADED',
        `the gateway is processing ${this.#inFlight} alerts; retry shortly`,
      );
    }
    this.#inFlight++;
    const id =
      typeof body === 'object' && body !== null && typeof (body as { id?: unknown }).id === 'string'
        ? (body as { id: string }).id
        : undefined;
    let release = () => {};
    try {
      if (id !== undefined) {
        // One submission of an id at a time: another waits until the first one's receipt is
        // stored (or it failed), then is a duplicate or a conflict as if it came after. Checked
        // at once, both passed the check before either was stored, and both were accepted (202)
        // with different content: the hub delivered one and refused the other, whose sender was
        // told it was accepted (found by an attacker pass).
        for (let prior = this.#byId.get(id); prior; prior = this.#byId.get(id)) await prior;
        const mine = new Promise<void>((resolve) => (release = resolve));
        this.#byId.set(id, mine);
        void mine.then(() => {
          if (this.#byId.get(id) === mine) this.#byId.delete(id);
        });
      }
      return await this.#submit(body, client, (stored) => {
        const done = release;
        release = () => {};
        void stored.then(done, done);
      });
    } finally {
      this.#inFlight--;
      release();
    }
  }

  /** Submissions under way by the id their body gives: settled once each one's receipt is stored. */
  readonly #byId = new Map<string, Promise<void>>();

  async #submit(
    body: unknown,
    client: string,
    onStored: (stored: Promise<void>) => void,
  ): Promise<Receipt> {
    const started = performance.now();
    const { agency, store, metrics } = this.#d;
    let assignedId: string | undefined;
    let signedIssuedAt: string | undefined;
    try {
      // Identifiers as officers type them become machine form first, so that a retry with the
      // same alert spelt differently is the same content.
      const { value: normalised, changes } = normaliseAlert(this.#object(body));
      const submitted = this.#withAnswersOrigin(normalised);
      // The content is the alert without its id: a resend under the id the gateway gave it (the
      // first send having left the id out) is the same content.
      const { id: _id, ...content } = submitted;
      const contentSha256 = contentDigest(content);
      if (typeof submitted['id'] === 'string') {
        const earlier = store.sentById(submitted['id']);
        // Accepted before this rule, an alert whose sender gave the id was hashed with it.
        if (earlier)
          return withChanges(
            this.#repeat(earlier, contentSha256, contentDigest(submitted)),
            changes,
          );
      }
      const now = (this.#d.now ?? (() => new Date()))();
      // The id is fixed before anything is sent, and every answer carries it: after a 503 the
      // client resends under this id, so a copy that did reach JetStream is never doubled.
      const id = submitted['id'] ?? newAlertId(now.getTime());
      if (typeof id === 'string') assignedId = id;
      // A resend after a 503 that leaves issuedAt to the gateway gets the issuedAt of the
      // first attempt: the same content then signs to the same bytes (Ed25519 is
      // deterministic), so JetStream recognises the copy that did arrive as a duplicate.
      const earlierIssuedAt =
        typeof id === 'string' && submitted['issuedAt'] === undefined
          ? this.#unconfirmed.get(id)
          : undefined;
      const { alert, schemaId } = this.#check(
        earlierIssuedAt === undefined
          ? { ...submitted, id }
          : { ...submitted, id, issuedAt: earlierIssuedAt },
        now,
        changes,
      );
      signedIssuedAt = alert.issuedAt;
      const jws = await signAlert(alert, this.#d.signingKey(), schemaId);
      const envelope = encodeEnvelope(jws);
      // The v1 schemas bound every member, which keeps a valid alert far below this; the check
      // guards future schema versions, so that an oversized alert is a 413, never a JetStream 503
      // nor a copy too large for its recipients once the router has countersigned it.
      if (envelope.byteLength > MAX_INBOUND_ENVELOPE_BYTES) {
        throw new GatewayError(
          'ERR_ALERT_TOO_LARGE',
          `the signed alert would be ${envelope.byteLength} bytes; the hub carries at most ${MAX_INBOUND_ENVELOPE_BYTES}`,
          [
            {
              pointer: '',
              message: 'is too large once signed; shorten free-text members or split it',
            },
          ],
        );
      }
      const ack = await this.#d.nats.publish(
        inboundSubject(agency, alert.type),
        envelope,
        inboundMsgId(agency, alert.id, envelope),
      );
      this.#unconfirmed.delete(alert.id);
      const stored = this.#d.receipts.enqueue({
        id: alert.id,
        sequence: ack.seq,
        stream: ack.stream,
        contentSha256,
        acceptedAt: now.toISOString(),
        type: alert.type,
        client,
        ...(alert.type === 'outcome' && typeof alert.answers === 'string'
          ? { answers: alert.answers, result: String(alert.result) }
          : {}),
      });
      onStored(stored);
      stored.catch((err: unknown) =>
        this.#d.log.error(
          { err, alertId: alert.id },
          'receipt not stored (JetStream has the alert)',
        ),
      );
      metrics.accepted.inc({ type: alert.type });
      metrics.published.inc();
      metrics.intakeSeconds.observe((performance.now() - started) / 1000);
      return withChanges({ id: alert.id, sequence: ack.seq, duplicate: ack.duplicate }, changes);
    } catch (err) {
      // Signed, then the publish failed: JetStream may have the alert all the same.
      if (assignedId !== undefined && signedIssuedAt !== undefined)
        this.#rememberUnconfirmed(assignedId, signedIssuedAt);
      if (err instanceof GatewayError && assignedId !== undefined) err.alertId ??= assignedId;
      metrics.rejected.inc({
        reason:
          err instanceof GatewayError || (err as { code?: string }).code
            ? String((err as { code: string }).code)
            : 'ERR_INTERNAL',
      });
      throw err;
    }
  }

  /**
   * Runs the checks of {@link submit} on `body` without signing or sending anything: the same
   * codes and the same issues (the console validates its form with this as the officer types).
   * Throws a `GatewayError`.
   */
  /** Alerts whose publish failed (a 503 may still have reached JetStream): id → issuedAt. */
  readonly #unconfirmed = new Map<string, string>();

  #rememberUnconfirmed(id: string, issuedAt: string): void {
    this.#unconfirmed.delete(id);
    this.#unconfirmed.set(id, issuedAt);
    // Bounded: the oldest go first (a resend comes within JetStream's duplicate window).
    while (this.#unconfirmed.size > MAX_UNCONFIRMED) {
      const oldest = this.#unconfirmed.keys().next().value;
      if (oldest === undefined) break;
      this.#unconfirmed.delete(oldest);
    }
  }

  validate(body: unknown): Alert {
    const { value, changes } = normaliseAlert(this.#object(body));
    return this.#check(
      this.#withAnswersOrigin(value),
      (this.#d.now ?? (() => new Date()))(),
      changes,
    ).alert;
  }

  /**
   * An outcome names the alert it answers by id; an alert is identified by (origin, id), and any
   * agency may send an alert under an id it has seen. The router routes an outcome to the origin
   * it names in `answersOrigin`, else to the one origin the reporter received the id from, and
   * refuses it when there are several (docs/protocol.md §9.3). `answersOrigin` is a member of
   * outcome version 2 only: version 1 is frozen as published (§2.2), so a version-1 outcome is
   * sent as written, never given it (one carrying it is refused by the v1 schema). A version-2
   * outcome naming none is given the origin when this agency received the id from one. Either
   * version naming none is refused (`ERR_ALERT_ID_AMBIGUOUS`) when it received the id from
   * several: the client names the one it answers, in a version-2 outcome.
   */
  #withAnswersOrigin(submitted: Record<string, unknown>): Record<string, unknown> {
    const answers = submitted['answers'];
    if (submitted['type'] !== 'outcome' || typeof answers !== 'string') return submitted;
    if (submitted['answersOrigin'] !== undefined) return submitted;
    const origins = this.#d.store.originsOfReceived(answers);
    const v1 = submitted['version'] === 1;
    if (origins.length > 1) {
      const among = `one of ${origins.join(', ')}`;
      throw new GatewayError(
        'ERR_ALERT_ID_AMBIGUOUS',
        `alerts with id ${answers} came from ${origins.join(', ')}: name the one this outcome answers in answersOrigin${v1 ? ', which only outcome version 2 has' : ''}`,
        v1
          ? [
              { pointer: '/answersOrigin', message: `is required (${among}), in version 2` },
              { pointer: '/version', message: 'must be 2 to name the origin of the alert' },
            ]
          : [{ pointer: '/answersOrigin', message: `is required: ${among}` }],
      );
    }
    if (origins.length === 1 && !v1) return { ...submitted, answersOrigin: origins[0] };
    // Version 1 from one origin: the router finds it. Never received: the router refuses it
    // (ERR_OUTCOME_NOT_RECEIVED).
    return submitted;
  }

  #object(body: unknown): Record<string, unknown> {
    const { agency } = this.#d;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new GatewayError('ERR_SCHEMA_INVALID', 'the alert must be a JSON object', [
        { pointer: '', message: 'must be a JSON object' },
      ]);
    }
    const submitted = body as Record<string, unknown>;
    if (submitted['origin'] !== undefined && submitted['origin'] !== agency) {
      throw new GatewayError('ERR_ORIGIN_MISMATCH', `this gateway sends only as ${agency}`, [
        {
          pointer: '/origin',
          message: `must be ${agency}, the agency of this gateway (or left out)`,
        },
      ]);
    }
    return submitted;
  }

  #check(
    submitted: Record<string, unknown>,
    now: Date,
    changes: readonly Normalisation[],
  ): { alert: Alert; schemaId: string } {
    // The members the gateway may fill go last, in a fixed order: a resend that now names its
    // id (after a 503) then signs to the same bytes as the first attempt.
    const { id: _id, origin: _origin, issuedAt: _issuedAt, ...rest } = submitted;
    const filled = {
      ...rest,
      id: submitted['id'] ?? newAlertId(now.getTime()),
      origin: this.#d.agency,
      issuedAt: submitted['issuedAt'] ?? now.toISOString(),
    };
    const checked = this.#d.registry.checkAlert(filled);
    if (!checked.ok)
      throw new GatewayError(
        checked.error.code,
        checked.error.message,
        checked.error.issues.map((i) => {
          // Say what the officer typed when the gateway had rewritten it.
          const c = changes.find((n) => n.pointer === i.pointer);
          return c ? { ...i, message: `${i.message} (typed as ${JSON.stringify(c.from)})` } : i;
        }),
      );
    this.#precheck(checked.value, now);
    return { alert: checked.value, schemaId: checked.schemaId };
  }

  /**
   * What the router will check and the gateway can know, checked before it answers 202: the
   * signing key is in the trust store, not revoked, and valid at `issuedAt` (a client may supply
   * an `issuedAt` before the key's validity), and `issuedAt` is not in the future.
   */
  #precheck(alert: Alert, now: Date): void {
    const key = this.#d.signingKey();
    const issuedAt = new Date(timeOf(alert.issuedAt));
    try {
      this.#d.trust?.().resolve(key.kid, this.#d.agency, 'agency', issuedAt);
    } catch (err) {
      // Only a key not valid at the alert's issuedAt is about a member of the alert; an unknown,
      // revoked or other agency's key is the gateway's configuration, not the alert.
      if (err instanceof AlertHubError && err.code in HTTP_STATUS)
        throw new GatewayError(
          err.code,
          err.message,
          err.code === ErrorCode.KeyNotValidAt
            ? [{ pointer: '/issuedAt', message: err.message }]
            : undefined,
        );
      throw err;
    }
    if (issuedAt.getTime() - now.getTime() > DEFAULT_MAX_CLOCK_SKEW_MS)
      throw new GatewayError(
        'ERR_ISSUED_AT_FUTURE',
        `issuedAt ${alert.issuedAt} is in the future`,
        [{ pointer: '/issuedAt', message: 'must not be in the future' }],
      );
  }

  #repeat(earlier: SentReceipt, contentSha256: string, withIdSha256: string): Receipt {
    if (earlier.contentSha256 !== contentSha256 && earlier.contentSha256 !== withIdSha256) {
      throw new GatewayError(
        'ERR_ALERT_ID_CONFLICT',
        `alert ${earlier.id} was already accepted with different content`,
        [
          {
            pointer: '/id',
            message:
              'is already used by another alert; use a new id, or send a retraction to correct the earlier one',
          },
        ],
      );
    }
    return { id: earlier.id, sequence: earlier.sequence, duplicate: true };
  }
}

function withChanges(receipt: Receipt, changes: readonly Normalisation[]): Receipt {
  return changes.length > 0 ? { ...receipt, normalised: changes } : receipt;
}

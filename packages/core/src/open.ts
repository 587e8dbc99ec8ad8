import type { Alert } from './alert.js';
import { MAX_INBOUND_ENVELOPE_BYTES, decodeEnvelope } from './codec.js';
import {
  ALERT_TYPE_FORM,
  AlertHubError,
  SubjectInvalidError,
  SubjectMismatchError,
  quoteIfForm,
} from './errors.js';
import { verifyOrigin, type GeneralJws, type VerifyOptions } from './jws.js';
import {
  verifyCountersignature,
  type PerCopyCountersignaturePolicy,
  type RouteClaims,
} from './route-tree.js';
import type { SchemaRegistry } from './schema-registry.js';
import { feedSubject, parseInboundSubject } from './subjects.js';

/** What opening a message needs: the trust store, the schemas, and the clock. */
export interface OpenOptions extends Omit<VerifyOptions, 'registry'> {
  readonly registry: SchemaRegistry;
}

/**
 * The outcome of opening a message: the verified alert, or the first check it failed. A refusal
 * is a value, not an exception; `alert` is set when the origin signature had verified before a
 * later check failed, so that the refusal can be recorded against the alert id.
 */
export type Opened<T> =
  | ({ readonly ok: true; readonly jws: GeneralJws; readonly alert: Alert } & T)
  | { readonly ok: false; readonly error: AlertHubError; readonly alert?: Alert };

function refused<T>(err: unknown, alert?: Alert): Opened<T> {
  if (!(err instanceof AlertHubError)) throw err;
  return { ok: false, error: err, ...(alert ? { alert } : {}) };
}

/**
 * Opens a message a gateway published on an inbound subject (`ahub.in.<origin>.<type>`), as the
 * router does before it routes anything. The checks, in this fixed order: decode the envelope (at
 * most {@link MAX_INBOUND_ENVELOPE_BYTES}, so that its countersigned copies fit the envelope limit);
 * verify the origin's signature; (no countersignature on an inbound message); the subject names
 * the signer and the alert type; the alert matches its schema.
 */
export async function openInbound(
  bytes: Uint8Array,
  subject: string,
  options: OpenOptions,
): Promise<Opened<object>> {
  let alert: Alert | undefined;
  try {
    const jws = decodeEnvelope(bytes, MAX_INBOUND_ENVELOPE_BYTES);
    alert = (await verifyOrigin(jws, options)).alert;
    const claim = parseInboundSubject(subject);
    if (!claim) throw new SubjectInvalidError(subject, 'ahub.in.<agency>.<type>');
    if (alert.origin !== claim.origin)
      throw new SubjectMismatchError(
        `signed by ${alert.origin} but published on the subject of ${claim.origin}`,
      );
    if (alert.type !== claim.type)
      // The subject's type is the publisher's text (up to 64 characters): not repeated.
      throw new SubjectMismatchError(
        `a ${quoteIfForm(alert.type, ALERT_TYPE_FORM, false)} published on the subject of another type`,
      );
    return { ok: true, jws, alert: options.registry.validateAlert(alert) };
  } catch (err) {
    return refused(err, alert);
  }
}

/**
 * Opens a copy the router forwarded to `recipient`'s feed, as the recipient's gateway does before
 * it stores anything. The checks, in this fixed order: decode the envelope; verify the origin's
 * signature; verify the router's countersignature for this recipient and alert (the one signature
 * over the routing decision's tree, with this copy's leaf and path); the subject is
 * the feed subject of this recipient, origin and type; the alert matches its schema.
 */
export async function openDelivery(
  bytes: Uint8Array,
  subject: string,
  options: OpenOptions & {
    readonly recipient: string;
    /** The retired per-copy countersignature: accepted (the default) or refused. */
    readonly perCopy?: PerCopyCountersignaturePolicy;
  },
): Promise<Opened<{ readonly route: RouteClaims }>> {
  let alert: Alert | undefined;
  try {
    const jws = decodeEnvelope(bytes);
    alert = (await verifyOrigin(jws, options)).alert;
    const { header } = await verifyCountersignature(jws, {
      ...options,
      recipient: options.recipient,
      alertId: alert.id,
    });
    const expected = feedSubject(options.recipient, alert.origin, alert.type);
    if (subject !== expected)
      throw new SubjectMismatchError(`message on ${subject} should be on ${expected}`);
    return { ok: true, jws, alert: options.registry.validateAlert(alert), route: header };
  } catch (err) {
    return refused(err, alert);
  }
}

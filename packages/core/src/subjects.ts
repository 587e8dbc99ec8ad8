import { createHash } from 'node:crypto';
/**
 * Every NATS subject, stream and consumer name alert-hub uses is built here and nowhere else.
 * The NATS permissions that `hubctl nats-config` generates are derived from the same functions,
 * so a subject cannot drift from the permission that guards it.
 *
 *   ahub.in.<origin>.<type>                 an agency publishes its alerts (stream AHUB_IN_<origin>)
 *   ahub.feed.<recipient>.<origin>.<type>   the router forwards a copy (stream AHUB_FEEDS)
 *   ahub.dlq.<claimed-origin>               refused messages with their reason (AHUB_DEADLETTER)
 *   _INBOX.<agency>.>                       an agency's replies, private to it
 *   ahub.audit.checkpoint.<log>             the router's signed audit checkpoints (AHUB_AUDIT)
 *   ahub.audit.cosig.<log>.<agency>         a witness's cosigned checkpoint (AHUB_AUDIT_COSIG)
 *   ahub.audit.proof.<log>.<agency>         an agency asks for inclusion proofs of its deliveries
 *   ahub.in.<agency>.receipt                a partner's signed delivery receipt (AHUB_IN_<agency>)
 *   ahub.feed.<agency>.<hub>.notice         the hub's signed notices to an agency (AHUB_FEEDS)
 *
 * Receipts and notices reuse the inbound and feed subjects on purpose: an agency may already
 * publish only `ahub.in.<itself>.>` and read only its own feed consumer, so they need no new
 * NATS permission, and an agency can neither receipt in another's name nor read another's
 * notices. The tokens `receipt` and `notice` are not alert types (the alert type enum of the
 * common schema never holds them).
 */
export const Streams = {
  /**
   * The single inbound stream of hubs provisioned before each agency had its own
   * ({@link inboundStreamName}). Provisioning takes its subjects away; the router still reads
   * what it holds until that is drained.
   */
  Inbound: 'AHUB_INBOUND',
  Feeds: 'AHUB_FEEDS',
  DeadLetter: 'AHUB_DEADLETTER',
  /** The router's signed audit checkpoints: only the router writes there. */
  Audit: 'AHUB_AUDIT',
  /** Witnesses' cosignatures: the last one of each witness per log (agencies write there). */
  AuditCosignatures: 'AHUB_AUDIT_COSIG',
} as const;

export const ROUTER_CONSUMER = 'router';
export const INBOUND_ALL = 'ahub.in.>';
/**
 * The subjects the shared inbound stream of an older hub ({@link Streams.Inbound}) is given when
 * provisioning takes `ahub.in.>` away from it: nobody publishes there (no NATS permission grants
 * them), so it only keeps what it held, under the messages' original subjects, until the router
 * has read it and it ages out.
 */
export const LEGACY_INBOUND_SUBJECTS = 'ahub.legacy-in.>';
export const FEEDS_ALL = 'ahub.feed.>';
export const DEAD_LETTER_ALL = 'ahub.dlq.>';

const TOKEN = /^[A-Za-z0-9_-]{1,64}$/;

function token(value: string, what: string): string {
  if (!TOKEN.test(value))
    throw new Error(`${what} ${JSON.stringify(value)} cannot be a NATS subject token`);
  return value;
}

/** Where agency `origin` publishes an alert of `type`. */
export function inboundSubject(origin: string, type: string): string {
  return `ahub.in.${token(origin, 'agency')}.${token(type, 'alert type')}`;
}

/** The type token of a delivery receipt on the inbound subjects. */
export const RECEIPT_TOKEN = 'receipt';
/** The type token of a hub notice on the feed subjects. */
export const NOTICE_TOKEN = 'notice';

/** Where agency `agency` publishes its signed delivery receipts. */
export function receiptSubject(agency: string): string {
  return inboundSubject(agency, RECEIPT_TOKEN);
}

/** Where the hub `hub` delivers its signed notices to `agency`. */
export function noticeSubject(agency: string, hub: string): string {
  return feedSubject(agency, hub, NOTICE_TOKEN);
}

/** The recipient, sender and type token of a feed subject, or undefined if it is not one. */
export function parseFeedSubject(
  subject: string,
): { recipient: string; origin: string; type: string } | undefined {
  const parts = subject.split('.');
  if (parts.length !== 5 || parts[0] !== 'ahub' || parts[1] !== 'feed') return undefined;
  const [, , recipient, origin, type] = parts as [string, string, string, string, string];
  return TOKEN.test(recipient) && TOKEN.test(origin) && TOKEN.test(type)
    ? { recipient, origin, type }
    : undefined;
}

/**
 * JetStream message id of a hub notice (a resend inside the window is dropped). Only the hub
 * publishes notices, into the feeds stream, where no agency can publish. A delivery receipt,
 * which agencies publish into their inbound streams, has {@link receiptMsgId}.
 */
export function statementMsgId(kind: 'notice', id: string): string {
  return `${kind}:${id}`;
}

/**
 * JetStream message id of `agency`'s delivery receipt `receiptId`:
 * `receipt:<agency>:<receipt id>:<digest>`, the digest as in {@link inboundMsgId}. JetStream
 * de-duplicates by message id across the whole inbound stream, whoever publishes: an id bound to
 * the agency and to the signed envelope cannot be taken by another agency ahead of it (the router
 * refuses a receipt whose id is not this one, `ERR_MSG_ID_MISMATCH`). A resend of the same signed
 * receipt is still a duplicate.
 */
export function receiptMsgId(agency: string, receiptId: string, envelope: Uint8Array): string {
  return `receipt:${agency}:${receiptId}:${envelopeDigest(envelope)}`;
}

/** The first 22 characters (128 bits) of the base64url SHA-256 of an envelope. */
function envelopeDigest(envelope: Uint8Array): string {
  return createHash('sha256').update(envelope).digest('base64url').slice(0, 22);
}

/** Prefix of every agency's own inbound stream ({@link inboundStreamName}). */
export const INBOUND_STREAM_PREFIX = 'AHUB_IN_';

/**
 * The inbound stream of one agency: it alone holds `ahub.in.<agency>.>`, with its own byte limit,
 * so one agency filling it refuses only its own messages, and the router reads each agency's
 * stream in turn.
 */
export function inboundStreamName(agency: string): string {
  return `${INBOUND_STREAM_PREFIX}${token(agency, 'agency')}`;
}

/** The agency whose inbound stream `stream` is, or undefined if it is not one. */
export function inboundStreamAgency(stream: string): string | undefined {
  if (!stream.startsWith(INBOUND_STREAM_PREFIX)) return undefined;
  const agency = stream.slice(INBOUND_STREAM_PREFIX.length);
  return TOKEN.test(agency) ? agency : undefined;
}

/** Every inbound subject of one agency (its publish permission). */
export function inboundSubjects(origin: string): string {
  return `ahub.in.${token(origin, 'agency')}.>`;
}

/** The agency and type an inbound subject claims, or undefined if it is not one. */
export function parseInboundSubject(subject: string): { origin: string; type: string } | undefined {
  const parts = subject.split('.');
  if (parts.length !== 4 || parts[0] !== 'ahub' || parts[1] !== 'in') return undefined;
  const [, , origin, type] = parts as [string, string, string, string];
  return TOKEN.test(origin) && TOKEN.test(type) ? { origin, type } : undefined;
}

/** Where the router forwards a copy of `origin`'s alert for `recipient`. */
export function feedSubject(recipient: string, origin: string, type: string): string {
  return `ahub.feed.${token(recipient, 'agency')}.${token(origin, 'agency')}.${token(type, 'alert type')}`;
}

/** The filter of `recipient`'s feed consumer. */
export function feedFilter(recipient: string): string {
  return `ahub.feed.${token(recipient, 'agency')}.>`;
}

/** The durable consumer that holds `agency`'s feed. */
export function feedConsumerName(agency: string): string {
  return `feed-${token(agency, 'agency')}`;
}

/** Dead-letter subject for a message that claimed to come from `origin` (or `unknown`). */
export function deadLetterSubject(origin: string | undefined): string {
  return `ahub.dlq.${origin && TOKEN.test(origin) ? origin : 'unknown'}`;
}

/** An agency's private reply prefix (the client's `inboxPrefix`). */
export function inboxPrefix(principal: string): string {
  return `_INBOX.${token(principal, 'principal')}`;
}

/**
 * JetStream message id of an inbound alert: `<origin>:<alert id>:<digest>`, the digest being the
 * first 22 characters (128 bits) of the base64url SHA-256 of the envelope bytes. JetStream
 * de-duplicates by message id across the whole stream, whoever publishes; an id bound to the
 * signed envelope cannot be taken by another agency ahead of the origin (the router refuses a
 * message whose id is not this one, `ERR_MSG_ID_MISMATCH`). A retry of the same envelope is
 * still a duplicate.
 */
export function inboundMsgId(origin: string, alertId: string, envelope: Uint8Array): string {
  return `${origin}:${alertId}:${envelopeDigest(envelope)}`;
}

/**
 * JetStream message id of the copy of `origin`'s alert forwarded to `recipient`: a redelivery
 * never duplicates it, and another agency's alert with the same id is never taken for it.
 */
export function forwardMsgId(origin: string, alertId: string, recipient: string): string {
  return `${alertId}:${recipient}:${origin}`;
}

/** Every checkpoint subject (what witnesses and the audit stream listen to). */
export const AUDIT_CHECKPOINTS_ALL = 'ahub.audit.checkpoint.>';
/** Every cosignature subject. */
export const AUDIT_COSIGNATURES_ALL = 'ahub.audit.cosig.>';

/** The audit log a router writes when its configuration names none (`auditLog`). */
export const DEFAULT_AUDIT_LOG = 'hub';

/** Where the router publishes the signed checkpoints of audit log `log`. */
export function auditCheckpointSubject(log: string): string {
  return `ahub.audit.checkpoint.${token(log, 'audit log')}`;
}

/** The audit log a checkpoint subject names, or undefined. */
export function parseAuditCheckpointSubject(subject: string): string | undefined {
  const parts = subject.split('.');
  return parts.length === 4 && subject.startsWith('ahub.audit.checkpoint.') && TOKEN.test(parts[3]!)
    ? parts[3]
    : undefined;
}

/** Where `agency`, as a witness, publishes its cosignature of a checkpoint of `log`. */
export function auditCosignatureSubject(log: string, agency: string): string {
  return `ahub.audit.cosig.${token(log, 'audit log')}.${token(agency, 'agency')}`;
}

/** Every cosignature subject of one log. */
export function auditCosignatures(log: string): string {
  return `ahub.audit.cosig.${token(log, 'audit log')}.*`;
}

/** The log and agency a cosignature subject names, or undefined. */
export function parseAuditCosignatureSubject(
  subject: string,
): { log: string; agency: string } | undefined {
  const parts = subject.split('.');
  if (parts.length !== 5 || !subject.startsWith('ahub.audit.cosig.')) return undefined;
  const [, , , log, agency] = parts as [string, string, string, string, string];
  return TOKEN.test(log) && TOKEN.test(agency) ? { log, agency } : undefined;
}

/** Where `agency` asks for inclusion proofs of the entries recording deliveries to it. */
export function auditProofSubject(log: string, agency: string): string {
  return `ahub.audit.proof.${token(log, 'audit log')}.${token(agency, 'agency')}`;
}

/** The router's subscription for proof requests of one log. */
export function auditProofRequests(log: string): string {
  return `ahub.audit.proof.${token(log, 'audit log')}.*`;
}

/** The checkpoint origin (c2sp.org/tlog-checkpoint) of audit log `log`. */
export function auditOrigin(log: string): string {
  return `alert-hub/audit/${token(log, 'audit log')}`;
}

/** What a NATS user may publish and subscribe to. */
export interface SubjectPermissions {
  readonly publish: readonly string[];
  readonly subscribe: readonly string[];
  /** May publish a reply to a request it received (NATS `allow_responses`), and nothing more. */
  readonly allowResponses?: boolean;
}

/**
 * The JetStream API prefix an agency's client uses (`jetstream(nc, { apiPrefix })`). An agency's
 * NATS account has no JetStream: nats-server answers `$JS.API.>` there itself ("JetStream not
 * enabled for account"), so the hub's API is imported under this prefix instead (the prefix a
 * JetStream domain `AHUB` would give).
 */
export const AGENCY_JS_API_PREFIX = '$JS.AHUB.API';

/** One service the hub's account exports to an agency's account: the hub's subject, the agency's name for it. */
export interface Grant {
  /** Subject in the hub's account. */
  readonly hub: string;
  /** Subject the agency publishes in its own account. */
  readonly local: string;
  /** Many replies to one request (a pull request): nats-server's `response_type: stream`. */
  readonly stream?: boolean;
}

/**
 * What the hub's account exports to one agency's account, and nothing else: its own inbound
 * subjects, its own feed consumer's INFO and MSG.NEXT requests, and that consumer's acks.
 */
export interface AgencyGrants {
  readonly inbound: readonly string[];
  readonly grants: readonly Grant[];
  /** Subjects of the hub's account the agency receives (stream exports): the audit checkpoints and cosignatures it witnesses. */
  readonly streams: readonly string[];
}

/**
 * The grants of `agency` (see {@link AgencyGrants}). `auditLogs` are the audit logs the hub's
 * routers write (their `auditLog`): the agency may publish its cosignatures of those logs only,
 * so it cannot make up subjects in the cosignature stream.
 */
export function agencyGrants(
  agency: string,
  inbound = [inboundSubjects(agency)],
  auditLogs: readonly string[] = [DEFAULT_AUDIT_LOG],
): AgencyGrants {
  const consumer = `${Streams.Feeds}.${feedConsumerName(agency)}`;
  const api = (what: string, stream = false): Grant => ({
    hub: `$JS.API.${what}.${consumer}`,
    local: `${AGENCY_JS_API_PREFIX}.${what}.${consumer}`,
    ...(stream ? { stream } : {}),
  });
  const acks = `$JS.ACK.${consumer}.>`;
  return {
    inbound,
    grants: [
      ...inbound.map((s) => ({ hub: s, local: s })),
      api('CONSUMER.INFO'),
      api('CONSUMER.MSG.NEXT', true),
      { hub: acks, local: acks },
      // as a witness: its own cosignatures of the hub's logs, and requests for proofs of its own
      // deliveries
      ...auditLogs.map((log) => {
        const s = auditCosignatureSubject(log, agency);
        return { hub: s, local: s };
      }),
      { hub: `ahub.audit.proof.*.${agency}`, local: `ahub.audit.proof.*.${agency}` },
    ],
    streams: [AUDIT_CHECKPOINTS_ALL, AUDIT_COSIGNATURES_ALL],
  };
}

/**
 * Least privilege for an agency's gateway inside its own account: publish only what the hub
 * grants it (its own inbound subjects; of the JetStream API, only its own feed consumer's info
 * and next-message requests and its acks); subscribe only to its own reply prefix. No stream or
 * consumer management at all.
 */
export function agencyPermissions(
  agency: string,
  grants: AgencyGrants = agencyGrants(agency),
): SubjectPermissions {
  return {
    publish: grants.grants.map((g) => g.local),
    subscribe: [`${inboxPrefix(agency)}.>`, ...grants.streams],
  };
}

/**
 * The router: it manages the streams and consumers (the whole JetStream API), forwards to every
 * feed, dead-letters, and acks what its own consumers (one per inbound stream) delivered. On the
 * inbound subjects it publishes only a dead letter an operator requeued, the original bytes
 * unchanged (they must still verify under the origin's own key), and what it takes from an
 * agency's leaf node, on that agency's subjects alone.
 */
export function routerPermissions(principal: string): SubjectPermissions {
  return {
    publish: [
      FEEDS_ALL,
      INBOUND_ALL,
      DEAD_LETTER_ALL,
      '$JS.API.>',
      // its own consumer of every inbound stream: each agency's AHUB_IN_<agency>, and an older
      // hub's AHUB_INBOUND until drained (no other consumer is named `router`)
      `$JS.ACK.*.${ROUTER_CONSUMER}.>`,
      // agencies' leaf nodes: their JetStream API (each leaf's own domain) and the acks of the
      // consumer reading their outbox; the hub's account imports these from each leaf's account
      '$JS.*.API.>',
      `$JS.ACK.*.${LEAF_OUTBOX_CONSUMER}.>`,
      AUDIT_CHECKPOINTS_ALL,
    ],
    subscribe: [`${inboxPrefix(principal)}.>`, AUDIT_COSIGNATURES_ALL, 'ahub.audit.proof.>'],
    // answers agencies' proof requests on their own reply subjects
    allowResponses: true,
  };
}

/**
 * An agency's leaf node (its own nats-server at the agency, bound to the agency's account on the
 * hub) runs its own JetStream domain, named after the agency. Its API, seen from the hub across
 * the leaf link, is `$JS.<domain>.API`.
 */
export function leafDomain(agency: string): string {
  return token(agency, 'agency');
}

/** The JetStream API prefix of `agency`'s leaf node, as the hub reaches it. */
export function leafJsApiPrefix(agency: string): string {
  return `$JS.${leafDomain(agency)}.API`;
}

/**
 * The stream on `agency`'s leaf node that stores its outgoing alerts (subjects
 * {@link inboundSubjects}) until the hub's inbound stream has sourced them.
 */
export function outboxStreamName(agency: string): string {
  return `AHUB_OUTBOX_${token(agency, 'agency')}`;
}

/**
 * The durable consumer the hub's routers read `agency`'s outbox with, on its leaf node (through
 * the leaf's JetStream API): they store what it delivers in the agency's inbound stream, then
 * acknowledge it.
 */
export const LEAF_OUTBOX_CONSUMER = 'hub';

/**
 * Acknowledgements of that consumer, which the hub's routers send to the leaf: the only subjects
 * besides the leaf's JetStream API that the hub's account reaches in the leaf's account.
 */
export function leafOutboxAcks(agency: string): string {
  return `$JS.ACK.${outboxStreamName(agency)}.${LEAF_OUTBOX_CONSUMER}.>`;
}

/**
 * Header of a message the routers took from a leaf's outbox into the agency's inbound stream: its
 * outbox sequence, from which the hub resumes should the consumer on the leaf be gone.
 */
export const LEAF_OUTBOX_SEQ_HEADER = 'Ahub-Outbox-Seq';

/**
 * Whether two subjects (wildcards `*` and `>` allowed in either) can name a common subject: a
 * stream whose subjects overlap {@link INBOUND_ALL} still receives agencies' messages.
 */
export function subjectsOverlap(a: string, b: string): boolean {
  const x = a.split('.');
  const y = b.split('.');
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const p = x[i];
    const q = y[i];
    if (p === '>' || q === '>') return p !== undefined && q !== undefined;
    if (p === undefined || q === undefined) return false;
    if (p !== '*' && q !== '*' && p !== q) return false;
  }
  return true;
}

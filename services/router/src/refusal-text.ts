import { RECEIPT_TOKEN, parseInboundSubject, type Issue } from '@alert-hub/core';

/**
 * What the audit log, the dead letter's headers, the router's log and the sender's notice keep of
 * a refusal's reason: at most this many characters (a schema refusal lists one issue per place,
 * and an alert can hold thousands of places).
 */
export const MAX_REFUSAL_REASON_CHARS = 1000;

// `"<what the alert held>" is not an ISO 3166-1 alpha-2 country code` and the like: the issues
// that quote a value (core's schema-registry and formats) begin with it, as a JSON string.
const LEADING_VALUE = /^"(?:[^"\\]|\\.)*"/;
const UNKNOWN_MEMBER = 'is not a known member';
// Core's parser names a member given twice (to the sender, who wrote it): the name is its text.
const NAMED_TWICE = /JSON names a member "[A-Za-z0-9_]{1,64}" twice/;

/**
 * A refusal's reason as the router records it: where and why, never what the refused alert held
 * (docs/security.md: nothing else from a refused message is recorded; the audit log keeps its
 * entries for good and coordinators read them). An issue's value is left out, and a member the
 * schema does not know is not named: its name is the sender's text, not the schema's, so the
 * place that holds it is said with how many such members it holds; nor is a member named twice.
 * Not cut: the refusal cuts every reason once ({@link bounded}).
 */
export function refusalReason(reason: string, issues?: readonly Issue[]): string {
  const message = reason.replace(NAMED_TWICE, 'JSON names a member twice');
  if (!issues?.length) return message;
  const parts: string[] = [];
  const unknown = new Map<string, number>();
  for (const i of issues) {
    if (i.message.startsWith(UNKNOWN_MEMBER)) {
      const parent = i.pointer.slice(0, i.pointer.lastIndexOf('/'));
      unknown.set(parent, (unknown.get(parent) ?? 0) + 1);
    } else parts.push(`${i.pointer || '/'} ${i.message.replace(LEADING_VALUE, 'the value')}`);
  }
  for (const [at, n] of unknown)
    parts.push(
      `${at || '/'} holds ${n === 1 ? 'a member' : `${n} members`} the schema does not know`,
    );
  return `${message}: ${parts.join('; ')}`;
}

/**
 * A reason cut to {@link MAX_REFUSAL_REASON_CHARS} UTF-16 code units with its ellipsis, never
 * inside a surrogate pair: half of one is not well-formed text, its JSON escape a lone surrogate
 * every partner's parser refuses (RFC 7493 §2.1), so the sender's notice would be refused.
 */
export function bounded(reason: string): string {
  if (reason.length <= MAX_REFUSAL_REASON_CHARS) return reason;
  let end = MAX_REFUSAL_REASON_CHARS - 1;
  const last = reason.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return `${reason.slice(0, end)}…`;
}

/**
 * The type a refused message is recorded with: an alert type of the registry (or `receipt`), or
 * none. The subject's type token is the sender's to choose (up to 64 characters): it is the type
 * the message claims only when the hub knows it.
 */
export function recordedType(
  type: string | undefined,
  known: readonly { readonly type: string }[],
): string | undefined {
  if (type === undefined) return undefined;
  return type === RECEIPT_TOKEN || known.some((t) => t.type === type) ? type : undefined;
}

/**
 * The subject a refused message is recorded with: as it is when it is an inbound subject of a
 * known type, else only its agency's part and its length (the rest is the sender's text; the
 * dead letter keeps it whole).
 */
export function recordedSubject(
  subject: string,
  known: readonly { readonly type: string }[],
): string {
  const claim = parseInboundSubject(subject);
  if (claim && recordedType(claim.type, known) !== undefined) return subject;
  const prefix = /^ahub\.in\.[A-Z]{2}-[A-Z0-9]{2,16}\./.exec(subject)?.[0] ?? '';
  return `${prefix}…(${subject.length - prefix.length} characters)`;
}

import type { JsMsg } from '@nats-io/jetstream';
import { AlertHubError, ErrorCode, receiptMsgId } from '@alert-hub/core';

/**
 * A delivery receipt must carry the JetStream message id bound to its agency and its signed
 * bytes (core's receiptMsgId), as an alert must carry its inboundMsgId: an id of another form
 * is one an agency chose, which could shadow another agency's receipt in JetStream's duplicate
 * window. A dead letter an operator requeued carries the requeue id instead (`requeues`, bound
 * to the same subject and bytes). Throws `ERR_MSG_ID_MISMATCH` (the receipt is refused, audited
 * and the agency told).
 */
export function checkReceiptMsgId(
  m: JsMsg,
  agency: string,
  receiptId: string,
  requeues?: { accepts(msgId: string, subject: string, data: Uint8Array): boolean },
): void {
  const msgId = m.headers?.get('Nats-Msg-Id') ?? '';
  if (
    msgId !== receiptMsgId(agency, receiptId, m.data) &&
    !requeues?.accepts(msgId, m.subject, m.data)
  )
    throw new AlertHubError(
      ErrorCode.MsgIdMismatch,
      'Nats-Msg-Id is not the one this receipt must carry (receipt:<agency>:<receipt id>:<digest>)',
    );
}

/**
 * What travels through the job queues. A taken message (after hours, a callback request, a
 * refused order) becomes one CRM case; `id` is unique per message and doubles as the BullMQ
 * job id and the CRM idempotency key, so replays and retries never create a second case.
 */
export interface CaseMessage {
  /** unique message id (e.g. `<callId>:msg:1`); job id and idempotency key */
  id: string;
  tenantId: string;
  callId: string;
  /** CRM account id when the caller was identified */
  accountId?: string;
  /** account / company name as identified or as said by the caller */
  accountName?: string;
  callerName: string;
  /** digits only */
  callbackNumber: string;
  reason: string;
  kind: 'after_hours_message' | 'callback' | 'handoff' | 'general';
  /** transcript so far, "caller: …\nagent: …" */
  transcript?: string;
  /** ISO time the message was taken */
  takenAt: string;
}

import { Refusal } from './refusal.js';

export interface SubmissionLimits {
  maxMessageSize: number;
  maxRecipients: number;
}

/** Size and fan-out limits, checked again on the whole message whatever the ingress already enforced. */
export function checkLimits(limits: SubmissionLimits, size: number, recipients: number): void {
  if (size > limits.maxMessageSize) throw new Refusal('message-too-large', `${size} > ${limits.maxMessageSize} bytes`);
  if (recipients === 0) throw new Refusal('no-recipients');
  if (recipients > limits.maxRecipients) throw new Refusal('too-many-recipients', `${recipients} > ${limits.maxRecipients}`);
}

import type { Submission } from './types.js';

/** RFC 5321 §4.4 trace field, with the RFC 3848 protocol keyword and the TLS details. */
export function receivedHeader(s: Submission, hostname: string, queueId: string): string {
  const tls = s.tls ? ` (using ${s.tls.protocol} with cipher ${s.tls.cipher})` : '';
  const client = `${sanitise(s.clientName)} ([${s.remoteAddress}])`;
  const forClause = s.envelope.rcptTo.length === 1 ? `\r\n\tfor <${s.envelope.rcptTo[0]}>` : '';
  return (
    `Received: from ${client}\r\n\tby ${hostname} (mss)${tls}\r\n\twith ${s.protocol} id ${queueId}` +
    `${forClause};\r\n\t${rfc5322Date(s.receivedAt)}\r\n`
  );
}

function sanitise(name: string): string {
  return name.replace(/[^A-Za-z0-9.\-[\]:]/g, '?').slice(0, 255) || 'unknown';
}

export function rfc5322Date(d: Date): string {
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number) => String(n).padStart(2, '0');
  return `${days[d.getUTCDay()]}, ${d.getUTCDate()} ${months[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

import type { SMTPServer, SMTPServerSession } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

/**
 * A listener on which AUTH is not offered, yet answered with our own refusal (and audited): smtp-server's
 * `disabledCommands: ['AUTH']` answers "command not recognized" with no hook for the audit record. For the servers
 * registered here, the mechanism list is emptied after construction (the constructor puts LOGIN and PLAIN back
 * into an empty one), so EHLO advertises no AUTH, and the AUTH command is answered by the registered function.
 * Other servers (submission) keep smtp-server's AUTH. Same dependency on smtp-server internals as src/smtp/enhanced-codes.ts
 * (docs/decisions/0003-smtp-server-adjustments.md); test/relay checks the reply.
 */

export type AuthRefusal = (session: SMTPServerSession) => Promise<{ code: number; text: string }>;

const refusers = new WeakMap<object, AuthRefusal>();

interface Connection {
  _server: object;
  session: SMTPServerSession;
  send(code: number, data: string): void;
}
type Handler = (this: Connection, command: Buffer, callback: () => void) => void;
const proto = SMTPConnection.prototype as unknown as { handler_AUTH: Handler; __mssRefuseAuth?: boolean };

if (!proto.__mssRefuseAuth) {
  const original = proto.handler_AUTH;
  proto.handler_AUTH = function handler_AUTH(this: Connection, command: Buffer, callback: () => void) {
    const refuse = refusers.get(this._server);
    if (!refuse) return original.call(this, command, callback);
    refuse(this.session).then(
      (reply) => {
        this.send(reply.code, reply.text);
        callback();
      },
      () => {
        this.send(451, '4.3.0 Temporary failure, please try again later');
        callback();
      },
    );
  };
  proto.__mssRefuseAuth = true;
}

/** `server` offers no AUTH, and every AUTH command on it gets `refuse`'s reply (give it `authOptional: true`). */
export function refuseAuth(server: SMTPServer, refuse: AuthRefusal): void {
  server.options.authMethods = [];
  refusers.set(server, refuse);
}

"""COMPRESS=DEFLATE (RFC 4978) with Python's imaplib: the socket is wrapped with zlib after the server's OK.
Prints one JSON object with what it saw.

usage: imaplib_compress.py <host> <plain-port> <tls-port> <user> <password> <message-file>
"""
import imaplib
import json
import ssl
import sys
import zlib

host, plain_port, tls_port, user, password, message_file = sys.argv[1:7]
raw = open(message_file, "rb").read()
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE  # throw-away self-signed test certificate

imaplib.Commands.setdefault("COMPRESS", ("AUTH", "SELECTED"))


class Deflated:
    """Raw DEFLATE in both directions once `start` has run: a sync flush after each command sent."""

    def start(self):
        typ, data = self._simple_command("COMPRESS", "DEFLATE")
        if typ != "OK":
            return typ, data
        self._deflate = zlib.compressobj(wbits=-15)
        self._inflate = zlib.decompressobj(wbits=-15)
        self._plain = b""
        self.bytes_in = 0
        return typ, data

    def _compressing(self):
        return getattr(self, "_deflate", None) is not None

    def send(self, data):
        if self._compressing():
            data = self._deflate.compress(data) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
        super().send(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise imaplib.IMAP4.abort("socket closed")
        self.bytes_in += len(chunk)
        self._plain += self._inflate.decompress(chunk)

    def read(self, size):
        if not self._compressing():
            return super().read(size)
        while len(self._plain) < size:
            self._fill()
        out, self._plain = self._plain[:size], self._plain[size:]
        return out

    def readline(self):
        if not self._compressing():
            return super().readline()
        while b"\n" not in self._plain:
            self._fill()
        end = self._plain.index(b"\n") + 1
        out, self._plain = self._plain[:end], self._plain[end:]
        return out


class DeflatedTls(Deflated, imaplib.IMAP4_SSL):
    pass


class DeflatedPlain(Deflated, imaplib.IMAP4):
    pass


out = {}

# Implicit TLS: a large message both ways.
imap = DeflatedTls(host, int(tls_port), ssl_context=ctx, timeout=30)
out["advertised"] = "COMPRESS=DEFLATE" in imap.capabilities
imap.login(user, password)
typ, data = imap.start()
out["compress"] = typ
out["compress_again"] = imap.start()[0]
typ, data = imap.append("INBOX", None, None, raw)
out["append"] = typ
typ, data = imap.select("INBOX")
out["exists"] = int(data[0])
typ, data = imap.fetch(data[0].decode(), "(BODY.PEEK[])")
out["fetched_equals_appended"] = data[0][1] == raw
out["compressed_bytes_in"] = imap.bytes_in
typ, data = imap.getquotaroot("INBOX")
out["quotaroot"] = [[x.decode() for x in d if x is not None] for d in data]
out["logout"] = imap.logout()[0]

# STARTTLS, then COMPRESS: compression inside TLS.
plain = DeflatedPlain(host, int(plain_port), timeout=30)
plain.starttls(ssl_context=ctx)
plain.login(user, password)
out["starttls_compress"] = plain.start()[0]
typ, data = plain.select("INBOX")
typ, data = plain.fetch("1", "(RFC822.SIZE)")
out["starttls_size"] = data[0].decode()
out["starttls_logout"] = plain.logout()[0]
print(json.dumps(out))

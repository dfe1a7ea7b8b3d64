"""An independent IMAP client: Python's imaplib against the server. Prints one JSON object with what it saw.

usage: imaplib_client.py <host> <plain-port> <tls-port> <user> <password> <message-file>
"""
import imaplib
import json
import ssl
import sys

host, plain_port, tls_port, user, password, message_file = sys.argv[1:7]
raw = open(message_file, "rb").read()
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE  # throw-away self-signed test certificate
out = {}

# STARTTLS listener: LOGIN is disabled in clear, allowed after STARTTLS.
plain = imaplib.IMAP4(host, int(plain_port), timeout=20)
out["logindisabled_before_tls"] = "LOGINDISABLED" in plain.capabilities
try:
    plain.login(user, password)
    out["login_in_clear"] = "accepted"
except imaplib.IMAP4.error as err:
    out["login_in_clear"] = str(err)
plain.starttls(ssl_context=ctx)
out["starttls_login"] = plain.login(user, password)[0]
plain.logout()

# Implicit TLS listener.
imap = imaplib.IMAP4_SSL(host, int(tls_port), ssl_context=ctx, timeout=20)
typ, _ = imap.login(user, password)
out["login"] = typ
typ, data = imap.list()
out["list"] = [line.decode() for line in data]
typ, data = imap.append("INBOX", "(\\Flagged)", imaplib.Time2Internaldate(1700000000), raw)
out["append"] = typ
out["append_code"] = data[0].decode()
typ, data = imap.select("INBOX")
out["exists"] = int(data[0])
typ, data = imap.fetch("1", "(BODY[])")
out["fetched_equals_appended"] = data[0][1] == raw
typ, data = imap.store("1", "+FLAGS", "(\\Answered)")
out["store"] = typ
typ, data = imap.fetch("1", "(FLAGS)")
out["flags"] = data[0].decode()
typ, data = imap.uid("FETCH", "1", "(BODYSTRUCTURE RFC822.SIZE)")
out["bodystructure"] = data[0].decode()
typ, data = imap.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
out["subject_header"] = data[0][1].decode()
# Folders, copy, move and expunge.
out["create"] = imap.create("Dossiers/Dupont")[0]
out["rename"] = imap.rename("Dossiers/Dupont", "Dossiers/Durand")[0]
out["unsubscribe"] = imap.unsubscribe("Junk")[0]
typ, data = imap.lsub()
out["lsub"] = [line.decode() for line in data]
typ, data = imap.copy("1", "Dossiers/Durand")
out["copy"] = typ
out["copy_code"] = data[0].decode()
imap.append("INBOX", None, None, raw)
typ, data = imap.uid("MOVE", "2", "Trash")
out["move"] = typ
out["move_untagged"] = [d.decode() for d in imap.untagged_responses.get("OK", []) if b"COPYUID" in d]
imap.store("1", "+FLAGS", "(\\Deleted)")
typ, data = imap.expunge()
out["expunge"] = [d.decode() for d in data if d]
typ, data = imap.select("INBOX")
out["exists_after_expunge"] = int(data[0])
imap.close()
out["delete"] = imap.delete("Dossiers/Durand")[0]
typ, data = imap.list('""', "Dossiers*")
out["list_after_delete"] = [line.decode() for line in data]

# IDLE (imaplib has no IDLE before Python 3.14: raw lines): a second connection appends while the first idles.
imap.select("INBOX")
imap.send(b"Z1 IDLE\r\n")
out["idle_continuation"] = imap.readline().decode().strip()
other = imaplib.IMAP4_SSL(host, int(tls_port), ssl_context=ctx, timeout=20)
other.login(user, password)
other.append("INBOX", None, None, raw)
out["idle_pushed"] = imap.readline().decode().strip()
imap.send(b"DONE\r\n")
out["idle_done"] = imap.readline().decode().strip()

# SEARCH, UID SEARCH (with CHARSET), and PREVIEW.
imap.store("1", "+FLAGS", "(\\Flagged)")
out["search_all"] = imap.search(None, "ALL")[1][0].decode()
out["search_flagged"] = imap.search(None, "FLAGGED")[1][0].decode()
out["search_unflagged"] = imap.search(None, "UNFLAGGED")[1][0].decode()
out["uid_search_subject"] = imap.uid("SEARCH", "CHARSET", "UTF-8", "SUBJECT", "biologie")[1][0].decode()
typ, data = imap.fetch("1", "(PREVIEW)")
out["preview"] = data[0].decode()

# UTF8=ACCEPT: the enabled connection writes and reads UTF-8 names; this one still sees modified UTF-7.
typ, data = other.enable("UTF8=ACCEPT")
out["enable_utf8"] = typ
out["create_utf8"] = other.create("Réunions")[0]
out["list_utf8"] = [line.decode() for line in other.list('""', "R*")[1]]
out["list_mutf7"] = [line.decode() for line in imap.list('""', "R*")[1]]
other.logout()
out["logout"] = imap.logout()[0]
print(json.dumps(out))

"""Independent clients: Python's smtplib sends, imaplib reads. Prints one JSON object with what it saw.

usage: python_exchange.py <config.json>   (keys: submission, imap, imaps, ca, sender, sender_password,
                                            recipient, recipient_password, subject, body)
"""
import email
import imaplib
import json
import smtplib
import ssl
import sys
from email.message import EmailMessage

cfg = json.load(open(sys.argv[1]))
ctx = ssl.create_default_context(cafile=cfg["ca"])  # verifies the dev PKI chain and the name "localhost"
out = {}

msg = EmailMessage()
msg["From"] = cfg["sender"]
msg["To"] = cfg["recipient"]
msg["Subject"] = cfg["subject"]
msg.set_content(cfg["body"])
raw = msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))

with smtplib.SMTP("localhost", cfg["submission"], timeout=20) as smtp:
    smtp.ehlo("python.test")
    out["auth_before_tls"] = "auth" in smtp.esmtp_features
    smtp.starttls(context=ctx)
    smtp.ehlo("python.test")
    smtp.login(cfg["sender"], cfg["sender_password"])
    refused = smtp.sendmail(cfg["sender"], [cfg["recipient"]], raw)
    out["refused"] = refused

# IMAP over STARTTLS on the plain port, then over implicit TLS.
plain = imaplib.IMAP4("localhost", cfg["imap"], timeout=20)
caps = plain.capabilities
out["logindisabled_before_tls"] = "LOGINDISABLED" in caps
plain.starttls(ssl_context=ctx)
typ, _ = plain.login(cfg["recipient"], cfg["recipient_password"])
out["starttls_login"] = typ
plain.logout()

imap = imaplib.IMAP4_SSL("localhost", cfg["imaps"], ssl_context=ctx, timeout=20)
imap.login(cfg["recipient"], cfg["recipient_password"])
typ, data = imap.select("INBOX")
out["exists"] = int(data[0])
typ, data = imap.uid("FETCH", "1:*", "(UID RFC822.SIZE BODY.PEEK[])")
messages = [part for part in data if isinstance(part, tuple)]
last = messages[-1]
body = last[1]
out["size_matches"] = ("RFC822.SIZE %d" % len(body)).encode() in last[0]
out["ends_with_submitted"] = body.endswith(raw)
parsed = email.message_from_bytes(body)
out["subject"] = str(email.header.make_header(email.header.decode_header(parsed["Subject"])))
uid = last[0].split(b"UID ")[1].split(b" ")[0].decode()
typ, data = imap.uid("STORE", uid, "+FLAGS", "(\\Seen \\Answered)")
out["store"] = typ
typ, data = imap.uid("FETCH", uid, "(FLAGS)")
out["flags"] = data[0].decode()
imap.logout()
print(json.dumps(out))

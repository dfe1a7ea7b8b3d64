/** Test helper: a message carrying attachments, as a hospital system would submit it. */

export interface TestAttachment {
  filename: string | null;
  type: string;
  content: Buffer;
}

/** A multipart/mixed message with a text part and base64 attachments, CRLF line endings. */
export function mimeMessage(attachments: TestAttachment[], extraHeaders = ''): Buffer {
  const parts = attachments.map((a) => {
    const name = a.filename === null ? '' : `; name="${a.filename}"`;
    const disposition = a.filename === null ? '' : `Content-Disposition: attachment; filename="${a.filename}"\r\n`;
    const body = a.content.toString('base64').replace(/.{76}/g, '$&\r\n');
    return `--b1\r\nContent-Type: ${a.type}${name}\r\nContent-Transfer-Encoding: base64\r\n${disposition}\r\n${body}\r\n`;
  });
  return Buffer.from(
    'From: service.auto@ch-test.mssante.test\r\nTo: dr.martin@ch-test.mssante.test\r\n' +
      `Subject: XDM/1.0/DDM+Lettre de liaison PAT-TROIS DOMINIQUE 28/03/1979\r\n${extraHeaders}` +
      'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n' +
      '--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nCompte rendu en pièce jointe.\r\n' +
      parts.join('') +
      '--b1--\r\n',
    'utf8',
  );
}

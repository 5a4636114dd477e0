/*
 * A small Markdown renderer that builds DOM nodes and never parses HTML.
 *
 * Model output is untrusted: a page that summarises a hostile web page may be
 * told to print "<img src=x onerror=...>". Instead of escaping a string and
 * handing it to innerHTML, this renderer never produces markup at all: every
 * piece of text becomes a Text node (textContent), elements come from a fixed
 * list of tag names, and the only attribute taken from the text is a link's
 * href, admitted only for http:, https: and mailto: URLs. HTML in the input
 * therefore shows up as the literal characters the model wrote.
 *
 *     import { render } from "./markdown.js";
 *     output.replaceChildren(render("# Title\n\nSome **bold** text"));
 *
 * Supported: ATX headings (shifted down by `headingOffset`, default 3, so a
 * model's "#" does not compete with the page's own headings), paragraphs,
 * fenced code blocks, block quotes, nested bullet and numbered lists, GFM
 * tables, horizontal rules; inline code, **strong**, *emphasis*,
 * ~~strikethrough~~, [links](https://...), backslash escapes. Images are shown
 * as links (never loaded: an image URL is a tracking beacon). An unclosed
 * construct, as happens mid-stream, is shown as plain text until it closes,
 * except an open code fence, which shows as code so far.
 */
const SAFE_PROTOCOLS = ["http:", "https:", "mailto:"];
const ESCAPABLE = "\\`*_{}[]()#+-.!|~<>\"'";
const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)[^`]*$/;
const HEADING = /^ {0,3}(#{1,6})(?:\s+(.*?))?\s*#*\s*$/;
const RULE = /^ {0,3}([-*_])(?:\s*\1){2,}\s*$/;
const QUOTE = /^ {0,3}> ?(.*)$/;
const LIST_ITEM = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/;
const TABLE_DIVIDER = /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;

function el(tag, children) {
  const node = document.createElement(tag);
  (children || []).forEach(function (child) {
    node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
  });
  return node;
}

/* --- Blocks ---------------------------------------------------------- */

function renderBlocks(lines, parent, options) {
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (!line.trim()) { i += 1; continue; }
    const next = blockAt(lines, i, options);
    parent.appendChild(next.node);
    i = next.end;
  }
}

function blockAt(lines, i, options) {
  const line = lines[i];
  let match;
  if ((match = FENCE.exec(line))) return codeBlock(lines, i, match);
  if ((match = HEADING.exec(line))) {
    const level = Math.min(6, match[1].length + options.headingOffset);
    return { node: inlineInto(el("h" + level), match[2] || ""), end: i + 1 };
  }
  if (RULE.test(line)) return { node: el("hr"), end: i + 1 };
  if (QUOTE.test(line)) return quoteBlock(lines, i, options);
  if (LIST_ITEM.test(line)) return listBlock(lines, i, options);
  if (isTableStart(lines, i)) return tableBlock(lines, i);
  return paragraph(lines, i);
}

function startsBlock(lines, i) {
  const line = lines[i];
  return !line.trim() || FENCE.test(line) || HEADING.test(line) || RULE.test(line) ||
    QUOTE.test(line) || LIST_ITEM.test(line) || isTableStart(lines, i);
}

function codeBlock(lines, i, match) {
  const fence = match[1];
  let body = [];
  let j = i + 1;
  while (j < lines.length && !closesFence(lines[j], fence)) {
    body.push(lines[j]);
    j += 1;
  }
  const code = el("code", [body.join("\n")]);
  if (match[2]) code.className = "language-" + match[2].replace(/[^\w-]/g, "");
  return { node: el("pre", [code]), end: Math.min(j + 1, lines.length) };
}

function closesFence(line, fence) {
  let match = /^ {0,3}(`{3,}|~{3,})\s*$/.exec(line);
  return !!match && match[1].charAt(0) === fence.charAt(0) && match[1].length >= fence.length;
}

function quoteBlock(lines, i, options) {
  const inner = [];
  let j = i;
  while (j < lines.length && QUOTE.test(lines[j])) {
    inner.push(QUOTE.exec(lines[j])[1]);
    j += 1;
  }
  const node = el("blockquote");
  renderBlocks(inner, node, options);
  return { node: node, end: j };
}

function paragraph(lines, i) {
  const text = [lines[i].trim()];
  let j = i + 1;
  while (j < lines.length && !startsBlock(lines, j)) {
    text.push(lines[j].trim());
    j += 1;
  }
  return { node: inlineInto(el("p"), text.join("\n")), end: j };
}

/* Lists: an item's content is its first line plus following lines indented
   past its marker; deeper-indented items inside it form a nested list. */
function listBlock(lines, i, options) {
  const first = LIST_ITEM.exec(lines[i]);
  const indent = first[1].length;
  const ordered = /\d/.test(first[2]);
  const list = el(ordered ? "ol" : "ul");
  if (ordered && parseInt(first[2], 10) !== 1) list.setAttribute("start", String(parseInt(first[2], 10)));
  let j = i;
  while (j < lines.length) {
    const match = LIST_ITEM.exec(lines[j]);
    if (!match || match[1].length !== indent || /\d/.test(match[2]) !== ordered) break;
    // Continuation lines are indented to the item's text; strip that much.
    const strip = new RegExp("^ {0," + (match[0].length - match[3].length) + "}");
    const body = [match[3]];
    j += 1;
    while (j < lines.length && belongsToItem(lines[j], indent, lines[j - 1])) {
      body.push(lines[j].replace(strip, ""));
      j += 1;
    }
    list.appendChild(listItem(body, options));
    j = nextItemAfterBlanks(lines, j, indent, ordered);
  }
  return { node: list, end: j };
}

/* A "loose" list has blank lines between its items: still one list. */
function nextItemAfterBlanks(lines, j, indent, ordered) {
  let k = j;
  while (k < lines.length && !lines[k].trim()) k += 1;
  const match = k > j && k < lines.length ? LIST_ITEM.exec(lines[k]) : null;
  return match && match[1].length === indent && /\d/.test(match[2]) === ordered ? k : j;
}

function belongsToItem(line, indent, previous) {
  const leading = line.length - line.replace(/^\s+/, "").length;
  if (!line.trim()) return false;
  if (leading > indent) return true;
  // A lazy continuation line: plain text right under an item's text.
  return !LIST_ITEM.test(line) && previous.trim() !== "" && leading === indent &&
    !FENCE.test(line) && !HEADING.test(line) && !QUOTE.test(line) && !RULE.test(line);
}

function listItem(body, options) {
  const item = el("li");
  const nestedAt = body.findIndex(function (line, k) { return k > 0 && (LIST_ITEM.test(line) || FENCE.test(line)); });
  const head = nestedAt === -1 ? body : body.slice(0, nestedAt);
  inlineInto(item, head.map(function (l) { return l.trim(); }).join("\n"));
  if (nestedAt !== -1) renderBlocks(body.slice(nestedAt), item, options);
  return item;
}

function isTableStart(lines, i) {
  return lines[i].indexOf("|") !== -1 && i + 1 < lines.length && TABLE_DIVIDER.test(lines[i + 1]) &&
    lines[i + 1].indexOf("-") !== -1;
}

function tableCells(line) {
  const trimmed = line.trim().replace(/^\|/, "").replace(/\|$/, "");
  const cells = [];
  let current = "";
  for (let k = 0; k < trimmed.length; k += 1) {
    if (trimmed[k] === "\\" && trimmed[k + 1] === "|") { current += "|"; k += 1; continue; }
    if (trimmed[k] === "|") { cells.push(current.trim()); current = ""; continue; }
    current += trimmed[k];
  }
  cells.push(current.trim());
  return cells;
}

function tableBlock(lines, i) {
  const header = tableCells(lines[i]);
  const aligns = tableCells(lines[i + 1]).map(function (cell) {
    if (/^:-+:$/.test(cell)) return "center";
    if (/-+:$/.test(cell)) return "right";
    return "";
  });
  const headRow = el("tr", header.map(function (cell, k) { return tableCell("th", cell, aligns[k]); }));
  let body = el("tbody");
  let j = i + 2;
  while (j < lines.length && lines[j].trim() && lines[j].indexOf("|") !== -1) {
    const cells = tableCells(lines[j]);
    body.appendChild(el("tr", header.map(function (_, k) { return tableCell("td", cells[k] || "", aligns[k]); })));
    j += 1;
  }
  const wrapper = el("div", [el("table", [el("thead", [headRow]), body])]);
  wrapper.className = "table-scroll";
  return { node: wrapper, end: j };
}

function tableCell(tag, text, align) {
  const cell = inlineInto(el(tag), text);
  if (tag === "th") cell.setAttribute("scope", "col");
  if (align) cell.style.textAlign = align;
  return cell;
}

/* --- Inline ---------------------------------------------------------- */

function inlineInto(parent, text) {
  let buffer = "";
  let i = 0;
  function flush() {
    if (buffer) parent.appendChild(document.createTextNode(buffer));
    buffer = "";
  }
  while (i < text.length) {
    const c = text[i];
    let found = null;
    if (c === "\\" && i + 1 < text.length && ESCAPABLE.indexOf(text[i + 1]) !== -1) {
      buffer += text[i + 1];
      i += 2;
      continue;
    }
    if (c === "`") found = codeSpan(text, i);
    else if (c === "!" && text[i + 1] === "[") found = link(text, i + 1, true);
    else if (c === "[") found = link(text, i, false);
    else if (c === "*" || c === "_" || c === "~") found = emphasis(text, i);
    if (found) {
      flush();
      parent.appendChild(found.node);
      i = found.end;
    } else {
      buffer += c;
      i += 1;
    }
  }
  flush();
  return parent;
}

function codeSpan(text, i) {
  const run = /^`+/.exec(text.slice(i))[0];
  let close = text.indexOf(run, i + run.length);
  while (close !== -1 && text[close + run.length] === "`") close = text.indexOf(run, close + run.length + 1);
  if (close === -1) return null;
  let content = text.slice(i + run.length, close).replace(/\n/g, " ");
  if (/^ .*[^ ] $|^ [^ ] $/.test(content)) content = content.slice(1, -1);
  return { node: el("code", [content]), end: close + run.length };
}

function emphasis(text, i) {
  const c = text[i];
  const double = text[i + 1] === c;
  if (c === "~" && !double) return null;
  const marker = double ? c + c : c;
  const start = i + marker.length;
  if (start >= text.length || /\s/.test(text[start])) return null;
  // Intra-word underscores (snake_case names) are not emphasis.
  if (c === "_" && i > 0 && /\w/.test(text[i - 1])) return null;
  let close = findCloser(text, start, marker);
  if (close === -1) return null;
  const tag = c === "~" ? "del" : (double ? "strong" : "em");
  return { node: inlineInto(el(tag), text.slice(start, close)), end: close + marker.length };
}

function findCloser(text, from, marker) {
  let at = from;
  while (true) {
    let close = text.indexOf(marker, at);
    if (close === -1) return -1;
    const single = marker.length === 1;
    const doubled = single && (text[close + 1] === marker || text[close - 1] === marker);
    let ok = close > from && !/\s/.test(text[close - 1]) && !doubled;
    if (ok && marker[0] === "_" && /\w/.test(text[close + marker.length] || "")) ok = false;
    if (ok) return close;
    at = close + (doubled ? 2 : 1);
  }
}

function link(text, i, isImage) {
  let depth = 0;
  let j = i;
  for (; j < text.length; j += 1) {
    if (text[j] === "\\") { j += 1; continue; }
    if (text[j] === "[") depth += 1;
    if (text[j] === "]") { depth -= 1; if (depth === 0) break; }
  }
  if (j >= text.length || text[j + 1] !== "(") return null;
  const target = /^\(\s*<?([^\s<>()]*)>?(?:\s+"[^"]*")?\s*\)/.exec(text.slice(j + 1));
  if (!target) return null;
  const label = text.slice(i + 1, j);
  const href = safeHref(target[1]);
  const end = j + 1 + target[0].length;
  if (!href) return { node: inlineInto(el("span"), label), end: end };
  const anchor = el("a");
  anchor.setAttribute("href", href);
  anchor.setAttribute("rel", "noopener noreferrer nofollow");
  anchor.setAttribute("target", "_blank");
  if (isImage) anchor.appendChild(document.createTextNode("[image: " + (label || href) + "]"));
  else inlineInto(anchor, label);
  return { node: anchor, end: end };
}

function safeHref(raw) {
  try {
    const url = new URL(raw, window.location.href);
    if (SAFE_PROTOCOLS.indexOf(url.protocol) === -1) return null;
    // Relative links would point into this application; only absolute ones are kept.
    return /^(https?:|mailto:)/i.test(raw) ? url.href : null;
  } catch (error) {
    return null;
  }
}

export function render(text, options) {
  const settings = { headingOffset: options && options.headingOffset != null ? options.headingOffset : 3 };
  const fragment = document.createDocumentFragment();
  renderBlocks(String(text).replace(/\r\n?/g, "\n").split("\n"), fragment, settings);
  return fragment;
}


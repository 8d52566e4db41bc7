// Source view: the document with the cited passage highlighted, its answer sentence marked
// more strongly, and scrolled into view. Text enters the DOM only through text nodes.
"use strict";

const params = new URLSearchParams(location.search);
const docId = decodeURIComponent(location.pathname.split("/").pop());
const article = document.getElementById("document");
const status = document.getElementById("status");

function offset(name) {
  const value = Number.parseInt(params.get(name) ?? "", 10);
  return Number.isFinite(value) && value >= 0 ? value : null;
}

// The 1-based page whose range holds `at`: pages lists the offset where each page starts.
function pageOf(pages, at) {
  let page = 0;
  for (const [index, start] of pages.entries()) if (start <= at) page = index + 1;
  return page;
}

function marked(text, className) {
  const mark = document.createElement("mark");
  mark.className = className;
  mark.textContent = text;
  return mark;
}

async function show() {
  const headers = {};
  const key = sessionStorage.getItem("citeqa-api-key");
  if (key) headers.Authorization = `Bearer ${key}`;
  const response = await fetch(`/documents/${encodeURIComponent(docId)}`, { headers });
  const body = await response.json();
  if (!response.ok) {
    status.textContent = `Error ${response.status}: ${body.detail}`;
    return;
  }
  document.getElementById("title").textContent = body.title;
  const text = body.text;
  const start = offset("start"), end = offset("end");
  if (start === null || end === null || start >= end || end > text.length) {
    article.textContent = text;
    status.textContent = body.pages ? `${body.source} · ${body.pages.length} pages` : body.source;
    return;
  }
  let astart = offset("astart"), aend = offset("aend");
  if (astart === null || aend === null || astart < start || aend > end || astart >= aend) {
    astart = start;
    aend = end;
  }
  const cited = document.createElement("span");
  cited.id = "cited";
  cited.className = "cited";
  cited.append(
    document.createTextNode(text.slice(start, astart)),
    marked(text.slice(astart, aend), "answer"),
    document.createTextNode(text.slice(aend, end)),
  );
  article.replaceChildren(document.createTextNode(text.slice(0, start)), cited, document.createTextNode(text.slice(end)));
  let where = "";
  if (body.pages) {
    const first = pageOf(body.pages, start), last = pageOf(body.pages, end - 1);
    where = first === last ? ` · page ${first}` : ` · pages ${first}–${last}`;
  }
  status.textContent = `${body.source}${where} · characters ${start}–${end}`;
  cited.setAttribute("tabindex", "-1");
  cited.scrollIntoView({ block: "center" });
  cited.focus({ preventScroll: true });
}

show();

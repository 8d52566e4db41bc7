// citeqa page: every piece of text goes into the DOM through textContent, never as HTML.
"use strict";

const form = document.getElementById("ask-form");
const list = document.getElementById("passages");
const status = document.getElementById("status");
const template = document.getElementById("passage-template");
const keyInput = document.getElementById("api-key");
const docFilter = document.getElementById("doc-filter");

keyInput.value = sessionStorage.getItem("citeqa-api-key") || "";

function authHeaders() {
  return keyInput.value ? { Authorization: `Bearer ${keyInput.value}` } : {};
}

function option(value, label) {
  const element = document.createElement("option");
  element.value = value;
  element.textContent = label;
  return element;
}

// The document filter: every document of GET /documents, by title (with the source when two
// share a title). Until the list loads (index still loading, API key not typed yet) it offers
// "All documents" alone.
async function loadDocuments() {
  const documents = [];
  try {
    for (let offset = 0; ; offset += 200) {
      const response = await fetch(`/documents?offset=${offset}&limit=200`, { headers: authHeaders() });
      if (response.status === 503) {
        setTimeout(loadDocuments, 1000);
        return;
      }
      if (!response.ok) return;
      const body = await response.json();
      documents.push(...body.documents);
      if (body.documents.length === 0 || documents.length >= body.total) break;
    }
  } catch {
    return;
  }
  const titles = new Map();
  for (const d of documents) titles.set(d.title, (titles.get(d.title) || 0) + 1);
  documents.sort((a, b) => a.title.localeCompare(b.title) || a.source.localeCompare(b.source));
  const chosen = docFilter.value;
  docFilter.replaceChildren(
    option("", "All documents"),
    ...documents.map((d) => option(d.doc_id, titles.get(d.title) > 1 ? `${d.title} — ${d.source}` : d.title)),
  );
  docFilter.value = documents.some((d) => d.doc_id === chosen) ? chosen : "";
}

function pageLabel(pages) {
  if (!pages) return "";
  return pages[0] === pages[1] ? ` · page ${pages[0]}` : ` · pages ${pages[0]}–${pages[1]}`;
}

// The section path below the document's title: a first heading that repeats the title goes,
// also where a site added its name to the title ("Configuration - MkDocs" over "Configuration").
function sectionTrail(title, section) {
  if (!section) return [];
  const parts = section.split(" › ");
  const plain = (text) => text.trim().toLocaleLowerCase();
  const head = plain(parts[0]), whole = plain(title);
  const repeats = head === whole || [" - ", " — ", " | ", ": "].some((sep) => whole.startsWith(head + sep));
  return repeats ? parts.slice(1) : parts;
}

// The answer's words marked in a run of text that starts at `from` in the source. A run whose
// text is not the source verbatim (markup inside it) is marked whole where it overlaps.
function runText(run, answer) {
  const fragment = document.createDocumentFragment();
  const exact = run.exact !== false;
  if (!answer || answer.end <= run.start || answer.start >= run.end) {
    fragment.append(document.createTextNode(run.text));
    return fragment;
  }
  const cut = (at) => (exact ? Math.min(Math.max(at - run.start, 0), run.text.length) : at <= run.start ? 0 : run.text.length);
  const lo = exact ? cut(answer.start) : 0, hi = exact ? cut(answer.end) : run.text.length;
  const mark = document.createElement("mark");
  mark.textContent = run.text.slice(lo, hi);
  fragment.append(document.createTextNode(run.text.slice(0, lo)), mark, document.createTextNode(run.text.slice(hi)));
  return fragment;
}

const MARK_TAGS = { code: "code", strong: "strong", em: "em", link: "span", image: "span" };

function runNode(run, answer) {
  let node = runText(run, answer);
  for (const name of [...(run.marks || [])].reverse()) {
    const wrapper = document.createElement(MARK_TAGS[name] || "span");
    if (name === "link" || name === "image") wrapper.className = name;
    wrapper.append(node);
    node = wrapper;
  }
  return node;
}

function runsInto(element, runs, answer) {
  for (const run of runs) element.append(runNode(run, answer));
  return element;
}

function cellRow(row, header, answer) {
  const tr = document.createElement("tr");
  for (const cell of row) tr.append(runsInto(document.createElement(header ? "th" : "td"), cell, answer));
  return tr;
}

const BLOCK_TAGS = { heading: "p", paragraph: "p", label: "p", item: "p" };

function blockNode(block, answer) {
  let element;
  if (block.kind === "code") {
    element = document.createElement("pre");
    element.append(runsInto(document.createElement("code"), block.runs.map((r) => ({ ...r, marks: [] })), answer));
  } else if (block.kind === "table") {
    element = document.createElement("table");
    const head = document.createElement("thead"), body = document.createElement("tbody");
    block.rows.forEach((row, n) => (n < (block.head || 0) ? head : body).append(cellRow(row, n < (block.head || 0), answer)));
    if (head.childElementCount) element.append(head);
    element.append(body);
  } else {
    element = document.createElement(BLOCK_TAGS[block.kind] || "p");
    if (block.marker) {
      const marker = document.createElement("span");
      marker.className = "marker";
      marker.textContent = block.marker;
      element.append(marker, " ");
    }
    runsInto(element, block.runs, answer);
  }
  element.classList.add(`md-${block.kind}`);
  if (block.depth) element.classList.add(`depth-${Math.min(block.depth, 4)}`);
  return element;
}

// A passage as the document reads: the server's display blocks (text only, never HTML), or
// from an older server the source text as it is.
function passageText(container, passage, answer) {
  if (passage.display) {
    container.classList.add("formatted");
    for (const block of passage.display) container.append(blockNode(block, answer));
    return;
  }
  const run = { text: passage.text, start: passage.citation.start, end: passage.citation.end };
  container.append(runText(run, answer));
}

function citationText(passage) {
  const c = passage.citation;
  const trail = sectionTrail(c.title, c.section);
  const quoted = passage.answer ? passage.answer.text : passage.text;
  const where = [c.title, ...trail].join(" › ");
  const span = passage.answer || c;
  const page = c.pages ? (c.pages[0] === c.pages[1] ? `, page ${c.pages[0]}` : `, pages ${c.pages[0]}–${c.pages[1]}`) : "";
  const link = `${location.origin}/view/${encodeURIComponent(c.doc_id)}?start=${c.start}&end=${c.end}&astart=${span.start}&aend=${span.end}`;
  return `“${quoted.replace(/\s+/g, " ").trim()}” — ${where}${page}, characters ${span.start}–${span.end} of ${c.source} (${c.doc_id}). ${link}`;
}

async function copyCitation(passage, button) {
  const text = citationText(passage);
  try {
    await navigator.clipboard.writeText(text);
    status.textContent = "Citation copied.";
  } catch {
    status.textContent = `Copy this citation: ${text}`;
  }
  button.dataset.copied = text;
}

function render(body) {
  list.replaceChildren();
  if (!body.answerable) {
    const note = document.createElement("p");
    note.className = "no-answer";
    const reason = body.no_answer_reason ? ` (${body.no_answer_reason})` : "";
    note.textContent = `No answer in the corpus${reason}. The closest passages are below, but they probably do not answer the question.`;
    list.append(note);
  }
  for (const passage of body.passages) {
    const item = template.content.firstElementChild.cloneNode(true);
    const c = passage.citation;
    // Highlighted only when the answer sentence is confident enough (older servers: always).
    const answer = passage.answer && passage.answer.highlighted !== false && body.answerable ? passage.answer : null;
    item.classList.add(answer ? "highlighted" : "unhighlighted");
    item.querySelector(".rank").textContent = `#${passage.rank}`;
    item.querySelector(".speaker").textContent = c.speaker ? `— ${c.speaker}` : "";
    item.querySelector(".score").textContent = `score ${passage.score.toFixed(3)}`;
    item.querySelector(".state").textContent = answer ? "answer highlighted" : "no sentence confident enough to highlight";
    passageText(item.querySelector(".text"), passage, answer);
    const trail = sectionTrail(c.title, c.section);
    const section = trail.length ? ` › ${trail.join(" › ")}` : "";
    item.querySelector(".where").textContent = `${c.title}${section}${pageLabel(c.pages)} · characters ${c.start}–${c.end}`;
    const link = item.querySelector(".source-link");
    const span = passage.answer || { start: c.start, end: c.end };
    link.href = `/view/${encodeURIComponent(c.doc_id)}?start=${c.start}&end=${c.end}&astart=${span.start}&aend=${span.end}`;
    link.setAttribute("aria-label", `open passage ${passage.rank} in its source`);
    const copy = item.querySelector(".copy-citation");
    copy.setAttribute("aria-label", `copy the citation of passage ${passage.rank}`);
    copy.addEventListener("click", () => copyCitation(passage, copy));
    list.append(item);
  }
}

function showPermalink(question) {
  const url = `/?q=${encodeURIComponent(question)}`;
  history.replaceState(null, "", url);
  const permalink = document.getElementById("permalink");
  permalink.href = url;
  permalink.hidden = false;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const question = document.getElementById("question").value.trim();
  if (!question) return;
  sessionStorage.setItem("citeqa-api-key", keyInput.value);
  status.textContent = "Searching…";
  const request = {
    question,
    mode: document.getElementById("mode").value,
    k: Number(document.getElementById("k").value) || 5,
  };
  if (docFilter.value) request.doc_ids = [docFilter.value];
  try {
    const response = await fetch("/ask", {
      method: "POST",
      headers: { "Content-Type": "application/json", ...authHeaders() },
      body: JSON.stringify(request),
    });
    const body = await response.json();
    if (!response.ok) {
      const detail = Array.isArray(body.detail) ? body.detail.map((d) => d.msg).join("; ") : body.detail;
      status.textContent = `Error ${response.status}: ${detail}`;
      list.replaceChildren();
      return;
    }
    status.textContent = `${body.passages.length} passages in ${body.took_ms} ms`;
    render(body);
    showPermalink(question);
  } catch (error) {
    status.textContent = `The service could not be reached (${error}).`;
  }
});

keyInput.addEventListener("change", () => {
  sessionStorage.setItem("citeqa-api-key", keyInput.value);
  loadDocuments();

// A permalink's question (/?q=...) is asked as soon as the page loads.
const asked = new URLSearchParams(location.search).get("q");
if (asked && asked.trim()) {
  document.getElementById("question").value = asked;
  form.requestSubmit();
}
});
loadDocuments();

// A permalink's question (/?q=...) is asked as soon as the page loads.
const asked = new URLSearchParams(location.search).get("q");
if (asked && asked.trim()) {
  document.getElementById("question").value = asked;
  form.requestSubmit();
}

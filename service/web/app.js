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

function highlighted(text, start, end) {
  const fragment = document.createDocumentFragment();
  fragment.append(document.createTextNode(text.slice(0, start)));
  const mark = document.createElement("mark");
  mark.textContent = text.slice(start, end);
  fragment.append(mark, document.createTextNode(text.slice(end)));
  return fragment;
}

function render(body) {
  list.replaceChildren();
  if (!body.answerable) {
    const note = document.createElement("p");
    note.className = "no-answer";
    note.textContent = "No answer in the corpus. The closest passages are below, but they probably do not answer the question.";
    list.append(note);
  }
  for (const passage of body.passages) {
    const item = template.content.firstElementChild.cloneNode(true);
    const c = passage.citation;
    item.querySelector(".rank").textContent = `#${passage.rank}`;
    item.querySelector(".speaker").textContent = c.speaker ? `— ${c.speaker}` : "";
    item.querySelector(".score").textContent = `score ${passage.score.toFixed(3)}`;
    const text = item.querySelector(".text");
    if (passage.answer) {
      text.append(highlighted(passage.text, passage.answer.start - c.start, passage.answer.end - c.start));
    } else {
      text.textContent = passage.text;
    }
    const section = c.section ? ` › ${c.section}` : "";
    item.querySelector(".where").textContent = `${c.title}${section}${pageLabel(c.pages)} · characters ${c.start}–${c.end}`;
    const link = item.querySelector(".source-link");
    const answer = passage.answer || { start: c.start, end: c.end };
    link.href = `/view/${encodeURIComponent(c.doc_id)}?start=${c.start}&end=${c.end}&astart=${answer.start}&aend=${answer.end}`;
    list.append(item);
  }
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
  } catch (error) {
    status.textContent = `The service could not be reached (${error}).`;
  }
});

keyInput.addEventListener("change", () => {
  sessionStorage.setItem("citeqa-api-key", keyInput.value);
  loadDocuments();
});
loadDocuments();

// citeqa page: every piece of text goes into the DOM through textContent, never as HTML.
"use strict";

const form = document.getElementById("ask-form");
const list = document.getElementById("passages");
const status = document.getElementById("status");
const template = document.getElementById("passage-template");
const keyInput = document.getElementById("api-key");

keyInput.value = sessionStorage.getItem("citeqa-api-key") || "";

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
    item.querySelector(".where").textContent = `${c.title}${section} · characters ${c.start}–${c.end}`;
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
  const headers = { "Content-Type": "application/json" };
  if (keyInput.value) headers.Authorization = `Bearer ${keyInput.value}`;
  try {
    const response = await fetch("/ask", {
      method: "POST",
      headers,
      body: JSON.stringify({
        question,
        mode: document.getElementById("mode").value,
        k: Number(document.getElementById("k").value) || 5,
      }),
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

// The live corpus: the document list with its generation, and upload/delete when writes are on.
// Kept apart from app.js (the question and passages) so the two change independently.
"use strict";

(() => {
  const section = document.getElementById("live-documents");
  if (!section) return;
  const list = section.querySelector("#live-list");
  const note = section.querySelector("#live-status");
  const form = section.querySelector("#live-upload");
  const key = () => document.getElementById("api-key").value;
  const auth = () => (key() ? { Authorization: `Bearer ${key()}` } : {});

  async function refresh() {
    const [docs, index] = await Promise.all([
      fetch("/documents?limit=200", { headers: auth() }),
      fetch("/index", { headers: auth() }),
    ]);
    if (!docs.ok || !index.ok) {
      note.textContent = `documents unavailable (${docs.status})`;
      return;
    }
    const body = await docs.json();
    const state = await index.json();
    const queued = state.queue.length ? `, ${state.queue.length} update(s) queued` : "";
    const failed = state.writer.error ? ` — last update failed: ${state.writer.error}` : "";
    note.textContent = `generation ${body.generation}, ${body.total} document(s)${queued}${failed}`;
    form.hidden = !(state.writes && key());
    list.replaceChildren(
      ...body.documents.map((d) => {
        const item = document.createElement("li");
        item.textContent = `${d.doc_id} · ${d.title} · generation ${d.generation} · ${d.sha256.slice(0, 12)} `;
        if (!form.hidden) {
          const remove = document.createElement("button");
          remove.type = "button";
          remove.textContent = "delete";
          remove.addEventListener("click", () => write("DELETE", d.doc_id));
          item.append(remove);
        }
        return item;
      }),
    );
  }

  async function write(method, docId, file) {
    const params = new URLSearchParams({ wait: "30" });
    if (file) params.set("filename", file.name);
    const response = await fetch(`/documents/${encodeURIComponent(docId)}?${params}`, {
      method,
      headers: auth(),
      body: file || undefined,
    });
    const body = await response.json();
    note.textContent = response.ok ? `${docId}: ${body.status}` : `${docId}: ${JSON.stringify(body.detail)}`;
    await refresh();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const file = form.querySelector("#live-file").files[0];
    const docId = form.querySelector("#live-id").value || (file && file.name.replace(/\.[^.]+$/, ""));
    if (file && docId) write("PUT", docId, file);
  });
  section.addEventListener("toggle", () => section.open && refresh());
  document.getElementById("api-key").addEventListener("change", refresh);
})();

// Keeps an open page of the dbdict dashboard up to date without reloading it.
// A page names the JSON it follows in <body data-news>; every data-poll seconds:
// - counts by status go into the elements marked data-count="STATUS" (or "total");
// - a job's fields go into the elements marked data-job="ID" data-field="NAME";
// - a page marked data-swap (a job's page) fetches itself again when the JSON differs
//   from what it was rendered with (data-seen), and takes the new <main>.
"use strict";
(function () {
  const body = document.body;
  const news = body.dataset.news;
  const every = parseFloat(body.dataset.poll) * 1000;
  if (!news || !(every > 0)) return;
  // JSON text with each object's keys in order: the same data always reads the same.
  const canonical = (value) =>
    JSON.stringify(value, (key, item) =>
      item && typeof item === "object" && !Array.isArray(item)
        ? Object.fromEntries(Object.entries(item).sort())
        : item);
  let previous = body.dataset.seen ? canonical(JSON.parse(body.dataset.seen)) : null;

  function setText(element, value) {
    const text = String(value);
    if (element.textContent === text) return;
    element.textContent = text;
    if (element.dataset.field === "status") element.className = "status-" + text;
  }

  function showCounts(counts, total) {
    for (const [name, count] of Object.entries(counts)) {
      document.querySelectorAll(`[data-count="${name}"]`).forEach((e) => setText(e, count));
    }
    document.querySelectorAll('[data-count="total"]').forEach((e) => setText(e, total));
    const ended = ["DONE", "FAILED", "CANCELLED", "PRUNED"].reduce((n, s) => n + (counts[s] || 0), 0);
    const bar = document.getElementById("progress");
    if (bar) bar.style.width = (total ? (100 * ended) / total : 100).toFixed(1) + "%";
    const endedText = document.getElementById("ended");
    if (endedText) setText(endedText, ended);
  }

  async function swap() {
    const response = await fetch(location.href, { credentials: "same-origin" });
    if (!response.ok) return;
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = page.getElementById("live");
    if (fresh) document.getElementById("live").replaceWith(fresh);
  }

  async function poll() {
    try {
      const url = new URL(news, location.href);
      const ids = new Set([...document.querySelectorAll("[data-job]")].map((e) => e.dataset.job));
      ids.forEach((id) => url.searchParams.append("id", id));
      const response = await fetch(url, { credentials: "same-origin" });
      if (!response.ok) return;
      const data = await response.json();
      if (data.counts) showCounts(data.counts, data.total);
      for (const [id, job] of Object.entries(data.jobs || {})) {
        document.querySelectorAll(`[data-job="${id}"][data-field]`).forEach((e) => {
          if (e.dataset.field in job) setText(e, job[e.dataset.field]);
        });
      }
      const seen = canonical(data);
      if (body.dataset.swap && seen !== previous) await swap();
      previous = seen;
    } catch (error) {
      console.warn("dashboard: no news this time:", error);
    } finally {
      setTimeout(poll, every);
    }
  }
  poll();
})();

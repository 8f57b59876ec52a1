// The Tasks overview: navigation without reloads (tabs, search, selecting a task, paging,
// actions), with the URL kept in step (pushState/popstate), and live news applied in place.
import { localizeTimes } from "./page.js";

const FRAGMENT = { "X-Surveyor-Fragment": "1" };
const REFRESH_MS = 400;
// A searched view's counts cost a full count of its matches: reuse them for a while.
const COUNTS_FRESH_MS = 20000;
const SAFE_STATUS = /^[a-z_]+$/;

export function setUpOverview() {
  const root = document.getElementById("overview");
  const searchForm = document.getElementById("search-form");
  const searchInput = document.getElementById("search");
  const tabInput = document.getElementById("search-tab");
  let current = location.pathname + location.search;
  let inflight = null;
  let refreshTimer = null;
  let lastRefresh = 0;
  const countsCache = new Map();

  // A searched count stops at the cap ("10,000+"); the "Count exactly" button beside the
  // tabs asks for the exact counts.
  function showCounts(counts, capped = []) {
    const exact = root.querySelector("#tabs [data-exact-counts]");
    if (exact) exact.hidden = capped.length === 0;
    for (const el of root.querySelectorAll("#tabs [data-count]")) {
      if (!(el.dataset.count in counts)) continue;
      const count = counts[el.dataset.count];
      if (capped.includes(el.dataset.count)) {
        el.textContent = `${count.toLocaleString("en-US")}+`;
        el.dataset.capped = "";
        el.title = "At least this many";
      } else {
        el.textContent = String(count);
        delete el.dataset.capped;
        el.removeAttribute("title");
      }
      el.removeAttribute("aria-busy");
    }
  }

  async function exactCounts() {
    const url = document.getElementById("tabs")?.dataset.countsUrl;
    if (!url) return;
    for (const el of root.querySelectorAll("#tabs [data-capped]")) el.setAttribute("aria-busy", "true");
    try {
      const response = await fetch(`${url}&exact=true`, { credentials: "same-origin" });
      if (!response.ok) return;
      const { counts } = await response.json();
      countsCache.set(url, { at: Date.now(), counts, capped: [] });
      if (document.getElementById("tabs")?.dataset.countsUrl === url) showCounts(counts);
    } catch {
      // left as it was; another click tries again
    }
  }

  root.addEventListener("click", (event) => {
    if (!event.target.closest?.("#tabs [data-exact-counts]")) return;
    event.preventDefault();
    exactCounts();
  });

  // Views with a search get their tab counts in a second request (see /tasks/counts).
  async function fillCounts() {
    const url = document.getElementById("tabs")?.dataset.countsUrl;
    if (!url) return;
    const cached = countsCache.get(url);
    if (cached) showCounts(cached.counts, cached.capped);
    if (cached && Date.now() - cached.at < COUNTS_FRESH_MS) return;
    try {
      const response = await fetch(url, { credentials: "same-origin" });
      if (!response.ok) return;
      const { counts, capped = [] } = await response.json();
      countsCache.set(url, { at: Date.now(), counts, capped });
      if (document.getElementById("tabs")?.dataset.countsUrl === url) showCounts(counts, capped);
    } catch {
      // the next refresh tries again
    }
  }

  function swapRegions(html) {
    const incoming = new DOMParser().parseFromString(html, "text/html");
    const focusedId = document.activeElement?.closest("[data-region]") ? focusKey() : null;
    for (const region of incoming.querySelectorAll("[data-region]")) {
      const mine = document.getElementById(region.id);
      if (mine) mine.replaceWith(document.adoptNode(region));
    }
    localizeTimes(root);
    if (focusedId) restoreFocus(focusedId);
    fillCounts();
  }

  function focusKey() {
    const el = document.activeElement;
    if (el.id) return `#${CSS.escape(el.id)}`;
    const href = el.getAttribute("href");
    if (href) return `[href="${CSS.escape(href)}"]`;
    const form = el.closest("form[data-action]");
    return form ? `form[data-action="${form.dataset.action}"] button` : null;
  }

  function restoreFocus(selector) {
    const el = selector && root.querySelector(selector);
    if (el) el.focus({ preventScroll: true });
  }

  function syncSearch(url) {
    const params = new URL(url, location.origin).searchParams;
    tabInput.value = params.get("tab") || tabInput.value;
    if (document.activeElement !== searchInput) searchInput.value = params.get("search") || "";
    if (document.querySelector("#search-feedback .search-error")) {
      searchInput.setAttribute("aria-invalid", "true");
    } else {
      searchInput.removeAttribute("aria-invalid");
    }
  }

  // A user's request replaces whatever is loading; a live refresh waits for it instead.
  async function load(url, { history = "none", focusCard = false, init = {}, background = false } = {}) {
    if (background && inflight) {
      refreshSoon();
      return;
    }
    inflight?.abort();
    const controller = new AbortController();
    inflight = controller;
    let response;
    try {
      response = await fetch(url, {
        ...init,
        headers: { ...FRAGMENT, ...(init.headers || {}) },
        credentials: "same-origin",
        signal: controller.signal,
      });
    } catch (error) {
      if (inflight === controller) inflight = null;
      if (error.name !== "AbortError" && history !== "none") location.href = url;
      return;
    }
    if (response.redirected && new URL(response.url).pathname === "/login") {
      location.href = response.url;
      return;
    }
    const html = await response.text();
    if (controller.signal.aborted) return;
    inflight = null;
    swapRegions(html);
    const canonical = response.headers.get("X-Surveyor-Url");
    if (canonical && response.ok) {
      if (history === "push" && canonical !== current) window.history.pushState({}, "", canonical);
      if (history === "replace") window.history.replaceState({}, "", canonical);
      current = canonical;
    }
    syncSearch(current);
    lastRefresh = Date.now();
    if (focusCard) document.getElementById("task-card")?.focus();
  }

  function isOverviewLink(link) {
    const url = new URL(link.href, location.origin);
    return url.origin === location.origin && url.pathname === "/tasks";
  }

  root.addEventListener("click", (event) => {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
    let link = event.target.closest("a");
    if (!link) {
      // A click anywhere on a row selects its task.
      const row = event.target.closest("table.tasks tbody tr[data-task-id]");
      if (!row || event.target.closest("button, input, select, textarea")) return;
      link = row.querySelector("a[data-select-task]");
      if (!link) return;
    }
    if (!isOverviewLink(link)) return;
    event.preventDefault();
    const selecting = link.hasAttribute("data-select-task") && link.href.includes("task=");
    load(link.href, { history: "push", focusCard: selecting });
  });

  searchForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const params = new URLSearchParams({ tab: tabInput.value });
    if (searchInput.value.trim()) params.set("search", searchInput.value);
    load(`/tasks?${params}`, { history: "push" });
  });

  root.addEventListener("submit", (event) => {
    const form = event.target.closest("form[data-action]");
    if (!form) return;
    event.preventDefault();
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
    for (const button of form.querySelectorAll("button")) button.disabled = true;
    load(form.action, { history: "replace", init: { method: "POST", body: new FormData(form) } });
  });

  window.addEventListener("popstate", () => {
    current = location.pathname + location.search;
    load(current);
  });

  function refreshSoon() {
    clearTimeout(refreshTimer);
    const wait = Math.max(REFRESH_MS, 1000 - (Date.now() - lastRefresh));
    refreshTimer = setTimeout(() => load(current, { background: true }), wait);
  }

  // A transition shows the status it moved to, so a batch of news that arrived together
  // still passes through each step; other news carries the task's status now.
  function applyTask(news) {
    const status = news.to_status || news.status;
    const label = news.to_status ? news.to_status_label : news.status_label;
    if (!SAFE_STATUS.test(status)) return;
    for (const badge of root.querySelectorAll(`[data-status-of="${news.task_id}"]`)) {
      badge.className = `status st-${status}`;
      badge.querySelector(".st-label").textContent = label;
    }
    const card = root.querySelector(`#task-card[data-task-id="${news.task_id}"]`);
    if (card) card.dataset.status = status;
    setProgress(news.task_id, "collect", news.collect);
    setProgress(news.task_id, "process", news.process);
  }

  function setProgress(taskId, phase, fraction) {
    const percent = Math.round(Math.max(0, Math.min(1, Number(fraction) || 0)) * 100);
    for (const rings of root.querySelectorAll(`[data-rings-of="${taskId}"]`)) {
      rings.querySelector(`[data-ring="${phase}"]`)?.setAttribute("stroke-dasharray", `${percent} 100`);
      for (const text of rings.querySelectorAll(`[data-ring-text="${phase}"]`)) text.textContent = `${percent}%`;
      const label = rings.querySelector("[data-rings-label]");
      const collect = rings.querySelector('[data-ring="collect"]').getAttribute("stroke-dasharray").split(" ")[0];
      const process = rings.querySelector('[data-ring="process"]').getAttribute("stroke-dasharray").split(" ")[0];
      const noun = rings.dataset.collectLabel || "Scan";
      label?.setAttribute("aria-label", `${noun} ${collect} percent, processing ${process} percent`);
    }
    for (const bar of root.querySelectorAll(`progress[data-bar-of="${taskId}"][data-bar="${phase}"]`)) bar.value = percent;
    for (const text of root.querySelectorAll(`[data-bar-text="${phase}"][data-bar-of="${taskId}"]`)) text.textContent = `${percent}%`;
  }

  syncSearch(current);
  fillCounts();
  return {
    after: root.dataset.after,
    onTask(news) {
      applyTask(news);
      refreshSoon();
    },
    onProgress(news) {
      applyTask(news);
    },
    onReconnect() {
      load(current, { background: true });
    },
  };
}

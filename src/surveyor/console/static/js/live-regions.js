// Live pages other than the Tasks overview (explorers, sites, assets, one asset): when news
// arrives that changes what they show, the page fetches itself again and swaps in the
// elements marked data-live (matched by id). Forms, typed searches and focus outside those
// elements stay as they are.
import { localizeTimes } from "./page.js";

const SETTLE_MS = 700;

// Which news each page cares about. Processing a task changes the inventory (assets, their
// services and the sites' asset counts); explorers change state on their own.
// The Explorers page may be the answer to a form (a new enrollment token): it refreshes from
// its own address.
const INTERESTS = {
  explorers: { explorers: true, task: () => false, url: "/explorers" },
  sites: { task: (news) => news.to_status === "processed" },
  assets: { task: (news) => news.to_status === "processed" },
  asset: { task: (news) => news.to_status === "processed" },
};

export function liveRegions(page) {
  const interest = INTERESTS[page];
  if (!interest || !document.querySelector("[data-live]")) return null;
  let timer = null;
  let inflight = false;
  let again = false;

  async function refresh() {
    if (inflight) {
      again = true;
      return;
    }
    inflight = true;
    try {
      const response = await fetch(interest.url || location.href, { credentials: "same-origin" });
      if (!response.ok) return;
      const incoming = new DOMParser().parseFromString(await response.text(), "text/html");
      for (const region of document.querySelectorAll("[data-live]")) {
        const fresh = incoming.getElementById(region.id);
        if (!fresh) continue;
        const adopted = document.adoptNode(fresh);
        region.replaceWith(adopted);
        localizeTimes(adopted);
      }
      document.body.dataset.refreshedAt = String(Date.now());
    } catch {
      // the next piece of news tries again
    } finally {
      inflight = false;
      if (again) {
        again = false;
        soon();
      }
    }
  }

  function soon() {
    clearTimeout(timer);
    timer = setTimeout(refresh, SETTLE_MS);
  }

  return {
    onTask(news) {
      if (interest.task(news)) soon();
    },
    onExplorers() {
      if (interest.explorers) soon();
    },
    onReconnect: soon,
  };
}

// The page's one server-sent-event stream (GET /api/v1/events). EventSource reconnects by
// itself and sends Last-Event-ID, so events missed while away are replayed; a stream that
// was gone for a while (a console restart) also asks the page to refresh what it shows.

const STATES = {
  live: "Live",
  reconnecting: "Reconnecting…",
  down: "Offline — retrying",
};
const GAP_MS = 3000;

export function startLiveUpdates(listener) {
  const indicator = document.getElementById("live-state");
  let lastId = Number(listener.after || 0);
  let source = null;
  let lostAt = null;
  let pendingState = null;

  function show(state) {
    clearTimeout(pendingState);
    const apply = () => {
      if (!indicator) return;
      indicator.dataset.state = state;
      indicator.querySelector(".live-text").textContent = STATES[state];
    };
    // Streams end every half minute and reconnect at once: only a longer gap is news.
    if (state === "live") apply();
    else pendingState = setTimeout(apply, GAP_MS);
  }

  function connect() {
    source = new EventSource(`/api/v1/events?after=${lastId}`);
    source.addEventListener("ready", () => {
      show("live");
      if (lostAt !== null && Date.now() - lostAt > GAP_MS) listener.onReconnect?.();
      lostAt = null;
    });
    source.addEventListener("task", (event) => {
      lastId = Math.max(lastId, Number(event.lastEventId) || 0);
      listener.onTask?.(JSON.parse(event.data));
    });
    source.addEventListener("progress", (event) => {
      listener.onProgress?.(JSON.parse(event.data));
    });
    source.addEventListener("explorers", (event) => {
      listener.onExplorers?.(JSON.parse(event.data));
    });
    source.addEventListener("error", () => {
      if (lostAt === null) lostAt = Date.now();
      if (source.readyState === EventSource.CLOSED) {
        // Refused outright (signed out, or the console answered with an error): retry later.
        show("down");
        setTimeout(connect, 5000);
      } else {
        show("reconnecting");
      }
    });
  }

  connect();
}

// Small helpers every page uses: local times, copy buttons, the CSRF token.

const pad = (n) => String(n).padStart(2, "0");

/** Show <time datetime> values in the browser's time zone (the server renders UTC). */
export function localizeTimes(root) {
  const zone = new Intl.DateTimeFormat(undefined, { timeZoneName: "short" });
  for (const el of root.querySelectorAll("time[datetime]")) {
    const when = new Date(el.dateTime);
    if (Number.isNaN(when.getTime()) || el.dataset.localized) continue;
    const zoneName = zone.formatToParts(when).find((p) => p.type === "timeZoneName");
    el.title = el.textContent;
    el.textContent =
      `${when.getFullYear()}-${pad(when.getMonth() + 1)}-${pad(when.getDate())} ` +
      `${pad(when.getHours())}:${pad(when.getMinutes())}` +
      (zoneName ? ` ${zoneName.value}` : "");
    el.dataset.localized = "1";
  }
}

/** Buttons with data-copy="#selector" copy that element's text. */
export function setUpCopyButtons(root) {
  for (const button of root.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", async () => {
      const source = document.querySelector(button.dataset.copy);
      if (!source) return;
      try {
        await navigator.clipboard.writeText(source.textContent.trim());
        button.textContent = "Copied";
      } catch {
        window.getSelection().selectAllChildren(source);
        button.textContent = "Press Ctrl+C to copy";
      }
    });
  }
}

export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

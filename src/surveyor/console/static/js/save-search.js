// "Save to Dashboard" (Assets, Tasks): save the search the page shows. The Tasks page changes
// its search without a reload, keeping the URL in step, so the form reads it from there.
export function setUpSaveSearch() {
  for (const box of document.querySelectorAll("[data-save-search]")) {
    const value = box.querySelector("[data-save-search-value]");
    const shown = box.querySelector("[data-save-search-shown]");
    const sync = () => {
      const search = new URLSearchParams(location.search).get("search") || "";
      value.value = search;
      shown.textContent = search || "(everything)";
    };
    box.addEventListener("toggle", () => {
      if (box.open) sync();
    });
    box.querySelector("form").addEventListener("submit", sync);
  }
}

// Entry point: each page names itself in <body data-page>, and gets its behaviour here.
import { localizeTimes, setUpCopyButtons } from "./page.js";
import { startLiveUpdates } from "./live.js";
import { liveRegions } from "./live-regions.js";
import { setUpOverview } from "./overview.js";
import { setUpTaskForm } from "./task-form.js";
import { setUpCredentialForm } from "./credential-form.js";
import { setUpImportForm } from "./import-form.js";
import { setUpSaveSearch } from "./save-search.js";

const page = document.body.dataset.page;
localizeTimes(document);
setUpCopyButtons(document);
setUpSaveSearch();

if (page === "overview") {
  const overview = setUpOverview();
  startLiveUpdates(overview);
} else if (page === "new-task") {
  setUpTaskForm();
} else if (page === "credentials") {
  setUpCredentialForm();
} else if (page === "imports") {
  setUpImportForm();
} else {
  const listener = liveRegions(page);
  if (listener) startLiveUpdates(listener);
}

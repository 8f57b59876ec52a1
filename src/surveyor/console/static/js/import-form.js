// The Import page: a drop zone around the file input, the upload sent with XMLHttpRequest
// so its progress shows (fetch reports none), then the import task followed live until it
// is Processed, with its change summary. Without this script the form posts as it is.
import { csrfToken } from "./page.js";
import { startLiveUpdates } from "./live.js";

const DONE = new Set(["processed", "failed", "canceled"]);
const SUMMARY_KEYS = ["new", "changed", "offline", "online", "unchanged", "ignored", "total"];

export function setUpImportForm() {
  const form = document.getElementById("import-form");
  const zone = document.getElementById("drop-zone");
  const input = form.querySelector("#file");
  const button = form.querySelector("#import-button");
  const progress = {
    section: document.getElementById("import-progress"),
    bar: document.getElementById("upload-bar"),
    status: document.getElementById("import-status"),
    summary: document.getElementById("import-summary"),
    links: document.getElementById("import-links"),
    task: document.getElementById("task-link"),
  };
  const errors = document.getElementById("form-errors");
  const errorList = document.getElementById("form-error-list");
  let taskId = null;
  let lastStatus = null;

  // Dropping a file anywhere on the zone puts it in the input, as choosing it would.
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (event) => {
      event.preventDefault();
      zone.classList.add("dragging");
    });
  }
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    if (event.dataTransfer?.files?.length) {
      input.files = event.dataTransfer.files;
      input.dispatchEvent(new Event("change"));
    }
  });

  function clearErrors() {
    errors.hidden = true;
    errorList.replaceChildren();
    for (const el of form.querySelectorAll(".field-error[data-from-script]")) el.remove();
    for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  }

  function showError(field, message) {
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = `#${field}`;
    link.textContent = field;
    item.append(link, `: ${message}`);
    errorList.replaceChildren(item);
    errors.hidden = false;
    const target = form.querySelector(`#${field}`);
    if (target) {
      target.setAttribute("aria-invalid", "true");
      const note = document.createElement("p");
      note.className = "field-error";
      note.dataset.fromScript = "";
      note.textContent = message;
      target.after(note);
    }
  }

  function say(text) {
    progress.status.textContent = text;
  }

  async function refreshTask() {
    if (taskId === null) return;
    const response = await fetch(`/imports/${taskId}/state`);
    if (!response.ok) return;
    const task = await response.json();
    if (task.status === lastStatus) return;
    lastStatus = task.status;
    say(`Import task: ${task.status_label || task.status}`);
    if (task.status === "processed" && task.change_summary) {
      const parts = SUMMARY_KEYS.filter((key) => task.change_summary[key]).map(
        (key) => `${task.change_summary[key]} ${key}`,
      );
      progress.summary.textContent = `Changes: ${parts.length ? parts.join(", ") : "none"}`;
    }
    if (task.status === "failed" && task.error) progress.summary.textContent = task.error;
    if (DONE.has(task.status)) button.disabled = false;
  }

  startLiveUpdates({
    after: form.dataset.after,
    onTask(event) {
      if (event.task_id === taskId) refreshTask();
    },
    onReconnect: refreshTask,
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors();
    const file = input.files[0];
    if (!file) {
      showError("file", "choose a file");
      input.focus();
      return;
    }
    const query = new URLSearchParams();
    for (const name of ["site", "name", "format"]) {
      const value = form.querySelector(`#${name}`).value.trim();
      if (value) query.set(name, value);
    }
    taskId = null;
    lastStatus = null;
    button.disabled = true;
    progress.section.hidden = false;
    progress.links.hidden = true;
    progress.summary.textContent = "";
    progress.bar.value = 0;
    progress.bar.textContent = "0%";
    say(`Uploading ${file.name}…`);

    const request = new XMLHttpRequest();
    request.open("POST", `${form.getAttribute("action")}?${query}`);
    request.setRequestHeader("X-CSRF-Token", csrfToken());
    request.setRequestHeader("Accept", "application/json");
    request.upload.onprogress = (progressEvent) => {
      if (!progressEvent.lengthComputable) return;
      const percent = Math.round((100 * progressEvent.loaded) / progressEvent.total);
      progress.bar.value = percent;
      progress.bar.textContent = `${percent}%`;
    };
    request.onerror = () => {
      button.disabled = false;
      say("The upload failed: the console could not be reached.");
    };
    request.onload = () => {
      let body = null;
      try {
        body = JSON.parse(request.responseText);
      } catch {
        body = null;
      }
      if (request.status !== 201 || !body?.task) {
        button.disabled = false;
        progress.section.hidden = true;
        showError(body?.error?.field || "file", body?.error?.message || `the upload failed (HTTP ${request.status})`);
        errors.focus?.();
        return;
      }
      progress.bar.value = 100;
      progress.bar.textContent = "100%";
      taskId = body.task.id;
      progress.task.href = body.url;
      progress.task.textContent = `Open the import task “${body.task.name}”`;
      progress.links.hidden = false;
      say("Uploaded; the import task is queued for processing.");
      refreshTask();
    };
    request.send(file);
  });
}

// The new-task form: show the fields that apply, start the targets from the site's scope,
// and preview the next runs of a schedule as it is typed (POST /tasks/new/preview).
import { csrfToken } from "./page.js";

const PREVIEW_DELAY_MS = 250;

export function setUpTaskForm() {
  const form = document.getElementById("task-form");
  const site = form.querySelector("#site_id");
  const targets = form.querySelector("#targets");
  const excludes = form.querySelector("#excludes");
  const timezone = form.querySelector("#timezone");
  const customPorts = form.querySelector("#ports_custom");
  const preview = {
    description: document.getElementById("preview-description"),
    list: document.getElementById("preview-list"),
    error: document.getElementById("preview-error"),
  };
  let targetsEdited = targets.value.trim() !== (site.selectedOptions[0]?.dataset.scope || "").trim();
  let previewTimer = null;
  let previewRequest = null;
  let markedField = null;

  const when = () => form.querySelector('input[name="when"]:checked')?.value || "now";
  const kind = () => form.querySelector('input[name="type"]:checked')?.value || "scan";
  const connector = () => form.querySelector("#connector").value;
  const runner = form.querySelector("#runner");
  const NOUNS = { scan: "scan", connector: "connector run" };

  // A scan and a connector run show their own fields; a connector shows its own options.
  function showKindFields() {
    for (const el of form.querySelectorAll("[data-kind]")) {
      el.hidden = el.dataset.kind !== kind();
      if (el.tagName === "OPTION" || el.tagName === "OPTGROUP") el.disabled = el.hidden;
    }
    for (const el of form.querySelectorAll("[data-connector]")) {
      el.hidden = el.dataset.connector !== connector();
    }
    if (runner.selectedOptions[0]?.disabled) {
      runner.value = "";
      const visible = [...runner.options].find((option) => !option.disabled);
      if (visible) visible.selected = true;
    }
    const noun = NOUNS[kind()];
    document.getElementById("form-title").textContent = `New ${noun}`;
    document.getElementById("create-button").textContent = `Create ${noun}`;
    document.title = `New ${noun} · Surveyor`;
  }
  const frequency = () => form.querySelector("#frequency").value;

  function showApplicableFields() {
    for (const el of form.querySelectorAll("[data-when]")) {
      const forWhen = el.dataset.when.split(" ").includes(when());
      const forFrequency = !el.dataset.frequencies || el.dataset.frequencies.split(" ").includes(frequency());
      el.hidden = !(forWhen && forFrequency);
    }
  }

  // The preview's error is shown at the field it names (and in the preview if no field).
  function markField(name, message) {
    if (markedField) {
      markedField.removeAttribute("aria-invalid");
      markedField.removeAttribute("aria-describedby");
      document.getElementById("live-field-error")?.remove();
    }
    markedField = name ? form.querySelector(`#${CSS.escape(name)}`) : null;
    const atField = markedField && !markedField.closest("[hidden]");
    if (atField) {
      const note = document.createElement("p");
      note.className = "field-error";
      note.id = "live-field-error";
      const icon = document.createElement("span");
      icon.className = "err-icon";
      icon.setAttribute("aria-hidden", "true");
      icon.textContent = "!";
      note.append(icon, ` ${message}`);
      markedField.setAttribute("aria-invalid", "true");
      markedField.setAttribute("aria-describedby", note.id);
      (markedField.closest(".field") || markedField).append(note);
    }
    preview.error.hidden = !message || atField;
    preview.error.textContent = message && !atField ? message : "";
  }

  async function refreshPreview() {
    if (when() !== "recurring") return;
    previewRequest?.abort();
    const controller = new AbortController();
    previewRequest = controller;
    let answer;
    try {
      const response = await fetch("/tasks/new/preview", {
        method: "POST",
        body: new FormData(form),
        headers: { "X-CSRF-Token": csrfToken() },
        credentials: "same-origin",
        signal: controller.signal,
      });
      answer = await response.json();
    } catch (error) {
      if (error.name !== "AbortError") markField(null, "The preview is not available right now.");
      return;
    }
    preview.list.replaceChildren();
    if (answer.error) {
      preview.description.textContent = "No runs to show until the schedule is valid.";
      markField(answer.error.field, answer.error.message);
      return;
    }
    markField(null, "");
    preview.description.textContent = `Runs ${answer.description}.`;
    for (const occurrence of answer.occurrences) {
      const item = document.createElement("li");
      const time = document.createElement("time");
      time.dateTime = occurrence.at;
      time.textContent = occurrence.text;
      item.append(time);
      preview.list.append(item);
    }
  }

  function previewSoon() {
    clearTimeout(previewTimer);
    previewTimer = setTimeout(refreshPreview, PREVIEW_DELAY_MS);
  }

  site.addEventListener("change", () => {
    const chosen = site.selectedOptions[0];
    if (!chosen || targetsEdited) return;
    targets.value = chosen.dataset.scope || "";
    excludes.value = chosen.dataset.excludes || "";
  });
  targets.addEventListener("input", () => {
    targetsEdited = true;
  });
  customPorts.addEventListener("focus", () => {
    const custom = form.querySelector('input[name="ports"][value="custom"]');
    if (custom) custom.checked = true;
  });
  for (const radio of form.querySelectorAll('input[name="type"]')) {
    radio.addEventListener("change", showKindFields);
  }
  form.querySelector("#connector").addEventListener("change", showKindFields);
  form.querySelector("#when-fields").addEventListener("input", () => {
    showApplicableFields();
    previewSoon();
  });
  form.querySelector("#when-fields").addEventListener("change", () => {
    showApplicableFields();
    previewSoon();
  });

  if (timezone.value === "UTC" && !form.querySelector("#form-errors")) {
    const local = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (local) timezone.value = local;
  }
  showApplicableFields();
  showKindFields();
  refreshPreview();
}

// The new-credential form: show only the fields of the kind chosen (without scripts, all
// kinds' fields show, and the console reads only the chosen kind's).
export function setUpCredentialForm() {
  const kind = document.getElementById("credential-kind");
  if (!kind) return;
  const groups = document.querySelectorAll("fieldset.credential-fields[data-kind]");
  const show = () => {
    for (const group of groups) group.hidden = group.dataset.kind !== kind.value;
  };
  kind.addEventListener("change", show);
  show();
}

// One setting's input, chosen by its kind (schema.json): switch, number, text, URL, URI,
// duration, offset, list, key-value mapping, enum select, write-only secret. Its label is the
// spec's name, bound to the input; help, default, error and live notes are tied to it with
// aria-describedby.
import { html } from "htm/preact";
import { inWords } from "./values.js";

// A placeholder showing the form a value takes (the help says it in words).
const PLACEHOLDERS = {
  duration: "PT20H",
  offset: "+00:00",
  uri: "urn:oid:2.16.840.1.113883.4.1",
  url: "https://",
};

function defaultText(setting) {
  const value = setting.default;
  if (value === null || value === undefined || (Array.isArray(value) && !value.length)) return "";
  return `Default: ${inWords(value)}.`;
}

export function Field({ setting, id, value, stored, onInput, readOnly, lockedBy, error, refused, note }) {
  const helpId = `${id}-help`;
  const errorId = `${id}-error`;
  const noteId = `${id}-note`;
  const described = [error && errorId, note && noteId, helpId].filter(Boolean).join(" ");
  const locked = readOnly || Boolean(lockedBy);
  const common = {
    id,
    "aria-describedby": described,
    "aria-invalid": error ? "true" : undefined,
  };
  let input;
  switch (setting.kind) {
    case "switch":
      input = html`<input type="checkbox" role="switch" ...${common} checked=${value}
        disabled=${locked} onChange=${(e) => onInput(e.currentTarget.checked)} />`;
      break;
    case "number":
      input = html`<input type="text" inputmode="numeric" ...${common} value=${value}
        readOnly=${locked} onInput=${(e) => onInput(e.currentTarget.value)} />`;
      break;
    case "enum":
      input = html`<select ...${common} disabled=${locked} value=${value}
        onChange=${(e) => onInput(e.currentTarget.value)}>
        <option value="">Not set</option>
        ${setting.options.map((option) => html`<option value=${option}>${setting.optionLabels?.[option] ?? option}</option>`)}
      </select>`;
      break;
    case "textarea":
    case "list":
      input = html`<textarea ...${common} rows=${setting.kind === "list" ? 3 : 2} value=${value}
        readOnly=${locked} onInput=${(e) => onInput(e.currentTarget.value)}></textarea>`;
      break;
    case "secret":
      input = html`<input type="password" autocomplete="new-password" ...${common} value=${value}
        readOnly=${locked} placeholder=${stored?.isSet ? "Set; type to replace" : "Not set"}
        onInput=${(e) => onInput(e.currentTarget.value)} />`;
      break;
    case "mapping":
      return html`<${Mapping} setting=${setting} id=${id} value=${value} onInput=${onInput}
        locked=${locked} lockedBy=${lockedBy} error=${error} refused=${refused} note=${note} described=${described}
        helpId=${helpId} errorId=${errorId} noteId=${noteId} />`;
    default:
      input = html`<input type=${setting.kind === "url" ? "url" : "text"} ...${common}
        value=${value} readOnly=${locked} placeholder=${PLACEHOLDERS[setting.kind] || ""}
        spellcheck="false" onInput=${(e) => onInput(e.currentTarget.value)} />`;
  }
  return html`<div class=${`field field-${setting.kind}${error ? " invalid" : ""}`}>
    <label for=${id}>${setting.label}</label>
    ${input}
    ${error && html`<p id=${errorId} class="error">${error}</p>`}
    ${note && html`<p id=${noteId} class="note">${note}</p>`}
    <p id=${helpId} class="help">
      ${setting.mandatory && html`<strong class="mandatory">Mandatory. </strong>`}${setting.help} ${defaultText(setting)}
      ${setting.kind === "secret" && stored?.isSet ? ` Set (fingerprint ${stored.fingerprint}).` : ""}
      ${lockedBy ? ` Read-only: changing it needs the ${lockedBy} permission.` : ""}
    </p>
  </div>`;
}

function Mapping({ setting, id, value, onInput, locked, lockedBy, error, refused, note, described, helpId, errorId, noteId }) {
  const rows = value;
  // The gateway names a refused entry (and, when it can, its key): only that one is invalid.
  // Its index counts the entries sent, which skip the wholly empty ones the form still shows.
  const sent = [];
  rows.forEach((row, i) => setting.keys.some((k) => String(row[k]).trim() !== "") && sent.push(i));
  const invalid = (index, key) => {
    if (!error) return false;
    if (!refused) return true;
    return Object.entries(refused).some(([at, which]) => sent[Number(at)] === index && (which === null || which === key));
  };
  const change = (index, key, text) =>
    onInput(rows.map((row, i) => (i === index ? { ...row, [key]: text } : row)));
  const add = () => onInput([...rows, Object.fromEntries(setting.keys.map((k) => [k, ""]))]);
  const remove = (index) => onInput(rows.filter((_, i) => i !== index));
  // A group named by its legend: the entries' inputs each have a label of their own, and the
  // Add entry button keeps its own name (a <label for> on it would rename it to the setting).
  return html`<fieldset id=${`${id}-group`} class=${`field field-mapping${error ? " invalid" : ""}`}
    aria-describedby=${described}>
    <legend>${setting.label}</legend>
    <table class="mapping">
      <thead><tr>${setting.keys.map((k) => html`<th scope="col">${k}</th>`)}<th></th></tr></thead>
      <tbody>
        ${rows.map(
          (row, index) => html`<tr>
            ${setting.keys.map(
              (key) => html`<td><input type="text" value=${row[key]} readOnly=${locked}
                aria-label=${`${setting.label}, entry ${index + 1}, ${key}`}
                aria-invalid=${invalid(index, key) ? "true" : undefined} aria-describedby=${described}
                onInput=${(e) => change(index, key, e.currentTarget.value)} /></td>`,
            )}
            <td>${!locked && html`<button type="button" class="quiet"
              onClick=${() => remove(index)}>Remove entry ${index + 1}</button>`}</td>
          </tr>`,
        )}
      </tbody>
    </table>
    <button type="button" id=${id} class="quiet" disabled=${locked} aria-describedby=${described}
      onClick=${add}>Add entry</button>
    ${error && html`<p id=${errorId} class="error">${error}</p>`}
    ${note && html`<p id=${noteId} class="note">${note}</p>`}
    <p id=${helpId} class="help">${setting.help} ${lockedBy ? ` Read-only: changing it needs the ${lockedBy} permission.` : ""}</p>
  </fieldset>`;
}

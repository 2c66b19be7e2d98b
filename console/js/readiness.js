// The readiness checklist beside the form: every mandatory setting and what the saved settings
// need, each missing one a link that focuses its field.
import { html } from "htm/preact";

const BLOCK_FIELDS = {
  PROVIDER: "provider",
  EXTERNAL_GATEWAY: "externalGateway",
  HEADERS: "headers",
  PATIENT_RESTRICTION: "patientRestriction",
  FHIR: "fhir",
  EHR: "ehr",
  OAUTH: "oauth",
};

// What an action produces is reached through the action that produces it, not a field.
const PRODUCED_BY = {
  jkuKeySet: "a-discover",
  oauthSigningKeys: "a-generate-key",
};

/** The id of the input a readiness path names, or of its section when it names a block. */
export function targetOf(block, path) {
  const action = path.length === 1 ? document.getElementById(PRODUCED_BY[path[0]] ?? "") : null;
  if (action && !action.disabled) return action;
  const field = BLOCK_FIELDS[block];
  const setting = path[path.length - 1];
  const input = document.getElementById(`f-${field}-${setting}`);
  if (input && path.length > 1) return input;
  const section = document.getElementById(`s-${field}`);
  return section?.querySelector("input, select, textarea, button") || section;
}

function focus(event, block, path) {
  event.preventDefault();
  const target = targetOf(block, path);
  if (target) {
    target.scrollIntoView({ block: "center" });
    target.focus();
  }
}

// Checks on what a setting's action produces rather than on a setting of the form.
const PRODUCED = {
  externalGateway: "External gateway connection",
  jkuKeySet: "JKU key set, discovered from the JKU Server URL",
  oauthSigningKeys: "OAuth signing key",
};

function name(forms, block, path, provider) {
  const field = BLOCK_FIELDS[block];
  const setting = path[path.length - 1];
  const sections = provider ? forms.providers[provider].sections : [];
  const section = sections.find((s) => s.field === field);
  const all = section?.settings || (field === "externalGateway" ? forms.externalGateway.settings : []);
  if (field === "provider") return "EHR provider";
  if (path.length === 1 && PRODUCED[path[0]]) return PRODUCED[path[0]];
  const found = all.find((s) => s.name === setting);
  if (found) return found.label;
  return section?.title || (field === "externalGateway" ? "External gateway" : path.join("."));
}

export function Readiness({ forms, readiness, provider }) {
  if (!readiness) return null;
  const missing = readiness.checks.filter((c) => c.state === "MISSING");
  return html`<aside class="readiness" aria-labelledby="readiness-title">
    <h2 id="readiness-title">Readiness</h2>
    <p class=${readiness.ready ? "ready" : "not-ready"} role="status">
      ${readiness.ready ? "Ready: every setting the integration needs is there." : `Not ready: ${missing.length} missing.`}
    </p>
    <ul class="checks">
      ${readiness.checks.map(
        (check) => html`<li class=${`check ${check.state.toLowerCase()}`}>
          ${check.state === "MISSING"
            ? html`<a href=${`#${check.path.join("-")}`} onClick=${(e) => focus(e, check.block, check.path)}>
                ${name(forms, check.block, check.path, provider)}</a>`
            : html`<span>${name(forms, check.block, check.path, provider)}</span>`}
          <span class="state">${check.state === "MISSING" ? "missing" : check.state === "SET" ? "set" : "default"}</span>
          ${check.state === "MISSING" && html`<span class="why">${check.message}</span>`}
        </li>`,
      )}
    </ul>
    ${readiness.warnings.length > 0 &&
    html`<h3>Warnings</h3>
      <ul class="warnings">
        ${readiness.warnings.map(
          (w) => html`<li><a href=${`#${w.path.join("-")}`} onClick=${(e) => focus(e, w.block, w.path)}>
            ${name(forms, w.block, w.path, provider)}</a>: ${w.message}</li>`,
        )}
      </ul>`}
  </aside>`;
}

// What changed between two versions, as a person reads it: each setting under the spec's name
// (console/schema.json), values in words, and a secret only as set or not set, never its value
// or fingerprint. Shared by history, rollback, the audit log and the import preview.
import { html } from "htm/preact";
import { labelOfPath } from "./labels.js";
import { inWords } from "./values.js";

function isSecret(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value) && "isSet" in value;
}

/** A stored value in words; objects other than secrets and lists read as "name = value". */
export function valueInWords(value) {
  if (isSecret(value)) return value.isSet ? "set" : "not set";
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    return Object.entries(value)
      .map(([k, v]) => `${k} = ${valueInWords(v)}`)
      .join(", ");
  }
  return inWords(value);
}

// What the gateway stores beside the settings (made by actions, not typed into a form): named as
// the readiness checklist names them.
const PRODUCED = {
  signingKeys: "OAuth signing keys",
  oauthSigningKeys: "OAuth signing key",
  jku: "JKU key set",
  jkuKeySet: "JKU key set, discovered from the JKU Server URL",
  externalGateway: "External gateway connection",
  externalGatewayId: "External gateway id",
};

/** The label of the setting (or of what an action stores) at a dotted path, else the path. */
export function labelOf(forms, provider, path) {
  const label = labelOfPath({ ...forms, active: provider }, path);
  if (label !== path) return label;
  return PRODUCED[path.split(".").pop()] ?? path;
}

/** One change: "Label: before → after"; a secret replaced by another reads "set → set (replaced)". */
export function changeInWords(forms, provider, change) {
  const label = labelOf(forms, provider, change.path);
  const replaced = isSecret(change.before) && isSecret(change.after) && change.before.isSet && change.after.isSet;
  return `${label}: ${valueInWords(change.before)} → ${valueInWords(change.after)}${replaced ? " (replaced)" : ""}`;
}

/**
 * A stored value as `valueInWords` reads it, each name and value isolated in a <bdi>: a
 * right-to-left one (an Arabic topic name) would otherwise reorder the sentence around it, so
 * that "name = value" reads "value = name".
 */
export function valueMarkup(value) {
  if (value === null || value === undefined || isSecret(value) || typeof value === "boolean") return valueInWords(value);
  const pairs = (entries) =>
    entries.map(([k, v], i) => html`${i ? ", " : ""}<bdi>${k}</bdi> = ${valueMarkup(v)}`);
  if (Array.isArray(value)) {
    if (!value.length) return valueInWords(value);
    return value.map((v, i) =>
      v !== null && typeof v === "object" && "name" in v && "value" in v
        ? html`${i ? ", " : ""}<bdi>${v.name}</bdi> = <bdi>${v.value}</bdi>`
        : html`${i ? ", " : ""}${valueMarkup(v)}`,
    );
  }
  if (typeof value === "object") return pairs(Object.entries(value));
  return html`<bdi>${String(value)}</bdi>`;
}

/** One change as `changeInWords` reads it, its values isolated (`valueMarkup`). */
export function ChangeInWords({ forms, provider, change }) {
  const label = labelOf(forms, provider, change.path);
  const replaced = isSecret(change.before) && isSecret(change.after) && change.before.isSet && change.after.isSet;
  return html`${label}: ${valueMarkup(change.before)} → ${valueMarkup(change.after)}${replaced ? " (replaced)" : ""}`;
}

export function ChangeList({ forms, provider, changes, empty = "No setting changed." }) {
  if (!changes.length) return html`<p class="help">${empty}</p>`;
  return html`<ul class="changes">
    ${changes.map((change) => html`<li key=${change.path}><${ChangeInWords} forms=${forms} provider=${provider} change=${change} /></li>`)}
  </ul>`;
}

/** When, in UTC with the zone named, so every reader sees the same time. */
export function When({ at }) {
  const text = new Date(at).toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short", timeZone: "UTC" });
  return html`<time datetime=${at}>${text} UTC</time>`;
}

/** Why a role cannot do something: the missing permission and the roles that have it. */
export function missing(forms, permission, what) {
  const roles = Object.entries(forms.roles)
    .filter(([, permissions]) => permissions.includes(permission))
    .map(([role]) => role);
  return `${what} needs the ${permission} permission (roles: ${roles.join(", ")}).`;
}

/** A refusal's field errors in words, each naming its setting. */
export function errorsInWords(forms, provider, errors) {
  return errors.map((error) => {
    const path = error.path.filter((part) => part !== "document" && part !== "input").join(".");
    const label = path ? labelOfPath({ ...forms, active: provider }, path) : "";
    return label && label !== path ? `${label}: ${error.message}` : error.message;
  });
}

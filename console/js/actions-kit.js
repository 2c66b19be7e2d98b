// What the integration actions share: why a role may not run one (in words), running a
// settings-changing mutation on the version the page shows, copy buttons, and outcomes announced
// to screen readers.
import { html } from "htm/preact";
import { useState } from "preact/hooks";
import { describe } from "./api.js";

/** Why an action is unavailable to this user, in words; null when they may do it. */
export function reasonFor(forms, may, operation) {
  const permission = forms.actions[operation];
  if (may(permission)) return null;
  // Service tokens are for machines: a person asks someone with a person's role.
  const holders = Object.entries(forms.roles)
    .filter(([role, permissions]) => role !== "service" && permissions.includes(permission))
    .map(([role]) => `${/^[aeiou]/.test(role) ? "an" : "a"} ${role}`);
  const ask = holders.length ? `: ask ${holders.join(" or ")}` : "";
  return `Needs the ${permission} permission${ask}.`;
}

/** The messages of a ValidationFailed, in one sentence. */
export function refusals(result) {
  return result.errors.map((e) => e.message.charAt(0).toUpperCase() + e.message.slice(1)).join(" ");
}

/**
 * Runs a settings-changing mutation on the version the page shows; a stored version is reloaded
 * into the page (as a save is). Returns the outcome in words.
 */
export async function change(api, document, variables, onChanged) {
  const data = await api.mutate(document, variables);
  const result = Object.values(data)[0];
  if (result.__typename === "SettingsSaved") {
    await onChanged(result.settings.version);
    return { ok: true, text: `Done: version ${result.settings.version}.` };
  }
  if (result.__typename === "VersionConflict") {
    await onChanged(null); // someone else's version: news to the page, not its own
    return { ok: false, text: `Not done: the settings changed meanwhile (now version ${result.currentVersion}). The page shows them now; try again.` };
  }
  return { ok: false, text: `Not done: ${refusals(result)}`, errors: result.errors };
}

/** A button for an action: disabled with its reason when the role may not run it. */
export function ActionButton({ id, reason, busy, onClick, children, quiet }) {
  return html`<button type="button" id=${id} class=${quiet ? "quiet" : undefined}
    disabled=${Boolean(reason) || busy} aria-describedby=${reason ? `${id}-why` : undefined}
    onClick=${onClick}>${children}</button>
    ${reason && html`<span id=${`${id}-why`} class="why-not">${reason}</span>`}`;
}

/** A value with a Copy button; the clipboard is written only when the user asks. */
export function Copyable({ id, label, value }) {
  const [status, setStatus] = useState("");
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(value);
      setStatus(`Copied the ${label}.`);
    } catch (error) {
      setStatus(`Could not copy the ${label}: ${error.message}. Select it and copy it by hand.`);
    }
  };
  return html`<div class="copyable">
    <dt id=${`${id}-label`}>${label.charAt(0).toUpperCase() + label.slice(1)}</dt>
    <dd>
      <code id=${id}>${value}</code>
      <button type="button" class="quiet" aria-label=${`Copy the ${label}`} aria-describedby=${id}
        onClick=${copy}>Copy</button>
      <span class="status" role="status">${status}</span>
    </dd>
  </div>`;
}

/** An action's outcome, announced when it changes. */
export function Outcome({ outcome }) {
  return html`<p class=${`outcome${outcome && !outcome.ok ? " refused" : ""}`} role="status">
    ${outcome?.text ?? ""}</p>`;
}

/** Runs `work` with the button busy; its outcome, or the error in words, is kept. */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [outcome, setOutcome] = useState(null);
  const run = async (work, waiting = "Working…") => {
    setBusy(true);
    setOutcome({ ok: true, text: waiting });
    try {
      setOutcome(await work());
    } catch (error) {
      setOutcome({ ok: false, text: `Not done: ${describe(error).message}` });
    } finally {
      setBusy(false);
    }
  };
  return { busy, outcome, run, setOutcome };
}

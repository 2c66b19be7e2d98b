// The sections of the page: what each shows, what saving it sends, and how a save's answer
// (saved, refused with field errors, or in conflict with a change made meanwhile) is shown.
import { html } from "htm/preact";
import { Field } from "./fields.js";
import { valueMarkup } from "./changes.js";
import { labelOfPath } from "./labels.js";
import { toForm } from "./values.js";

/** The page's sections for the active EHR, in the spec's order, each with its stored values. */
export function sectionsFor(forms, settings) {
  const provider = settings?.provider ?? null;
  const providerSetting = {
    name: "provider",
    label: "EHR provider",
    help: "The Electronic Health Record system this tenant integrates with. The settings of an EHR are kept when you switch away, and come back when you switch back.",
    kind: "enum",
    options: forms.selectProvider.options.map((o) => o.value),
    optionLabels: Object.fromEntries(forms.selectProvider.options.map((o) => [o.value, o.label])),
    default: null,
    mandatory: true,
    permission: null,
  };
  const list = [
    {
      key: "provider",
      title: "Provider Settings",
      settings: [providerSetting],
      stored: { provider },
      permission: forms.selectProvider.permission,
    },
  ];
  if (!provider) return list;
  for (const section of forms.providers[provider].sections) {
    if (section.block === "PROVIDER") continue;
    if (section.block === "EXTERNAL_GATEWAY") {
      list.push({
        key: "externalGateway",
        title: section.title,
        settings: forms.externalGateway.settings,
        stored: settings.externalGateway || {},
        permission: forms.externalGateway.permission,
        whole: true, // createExternalGateway takes the whole connection
      });
    } else if (section.block === "PATIENT_RESTRICTION") {
      list.push({
        key: "patientRestriction",
        title: section.title,
        settings: forms.patientRestriction.settings,
        stored: settings.patientRestriction || {},
        permission: forms.patientRestriction.permission,
      });
    } else {
      list.push({
        key: section.field,
        title: section.title,
        settings: section.settings,
        stored: settings[section.field] || {},
        permission: section.permission,
        member: section.member,
        mutation: section.mutation,
      });
    }
  }
  return list;
}

function ConflictPanel({ forms, conflict, onReapply, onDiscard }) {
  const label = (path) => labelOfPath(forms, path);
  return html`<div class="conflict" role="alert">
    <p><strong>Someone else saved these settings meanwhile</strong> (now version ${conflict.currentVersion}). Nothing of yours was saved. What changed:</p>
    <ul>
      ${conflict.changes.map(
        (c) => html`<li>${label(c.path)}: ${valueMarkup(c.before)} → ${valueMarkup(c.after)}</li>`,
      )}
    </ul>
    <button type="button" onClick=${onReapply}>Re-apply my edits on version ${conflict.currentVersion}</button>
    <button type="button" class="quiet" onClick=${onDiscard}>Discard my edits</button>
  </div>`;
}

export function Section({ forms, section, state, may, onEdit, onSave, onReapply, onDiscard, actions }) {
  const { edits = {}, errors = {}, entries = {}, notes = {}, conflict, saving, message } = state;
  const editable = may(section.permission);
  const dirty = Object.keys(edits).length > 0;
  const headingId = `h-${section.key}`;
  const submit = (event) => {
    event.preventDefault();
    onSave();
  };
  return html`<section id=${`s-${section.key}`} class="section" aria-labelledby=${headingId}>
    <h2 id=${headingId}>${section.title}</h2>
    ${!editable && html`<p class="help">Read-only: saving this section needs the ${section.permission} permission.</p>`}
    <form onSubmit=${submit} novalidate>
      ${section.settings.map((setting) => {
        const id = `f-${section.key}-${setting.name}`;
        const value = setting.name in edits ? edits[setting.name] : toForm(setting, section.stored[setting.name]);
        const lockedBy = editable && setting.permission && !may(setting.permission) ? setting.permission : null;
        return html`<${Field} key=${id} setting=${setting} id=${id} value=${value}
          stored=${section.stored[setting.name]} readOnly=${!editable} lockedBy=${lockedBy}
          error=${errors[setting.name]} refused=${entries[setting.name]} note=${notes[setting.name]}
          onInput=${(raw) => onEdit(setting.name, raw)} />`;
      })}
      ${errors._section && html`<p class="error" role="alert">${errors._section}</p>`}
      ${conflict && html`<${ConflictPanel} forms=${forms} conflict=${conflict} onReapply=${onReapply} onDiscard=${onDiscard} />`}
      ${editable &&
      html`<div class="actions">
        <button type="submit" disabled=${saving || !dirty}>Save ${section.title}</button>
        ${dirty && html`<button type="button" class="quiet" onClick=${onDiscard}>Discard changes</button>`}
        <span class="status" role="status">${saving ? "Saving…" : message || (dirty ? "Unsaved changes" : "")}</span>
      </div>`}
    </form>
    ${actions}
  </section>`;
}

// Promotion between tenants: export one tenant's settings as a JSON file (made in the page, as
// a Blob: no server route), and import such a file into the open tenant, first as a dry run
// that shows what would change, readiness afterwards and the secrets still to set, then for
// real once confirmed, on the version the preview was made on.
import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import { ChangeList, errorsInWords, labelOf, missing } from "./changes.js";

// As each operation's "Requires:" says in schema.graphql.

const EXPORT_SETTINGS = `query Export($tenantId: ID!) { exportSettings(tenantId: $tenantId) }`;

const IMPORT_SETTINGS = `mutation Import($tenantId: ID!, $document: JSON!, $dryRun: Boolean!, $expectedVersion: Int) {
  importSettings(tenantId: $tenantId, document: $document, dryRun: $dryRun, expectedVersion: $expectedVersion) {
    __typename
    ... on ImportPreview {
      changes { path before after }
      readiness { provider ready missing { block path message } }
    }
    ... on SettingsSaved { settings { id version } }
    ... on ValidationFailed { errors { path code message } }
    ... on VersionConflict { currentVersion }
  }
}`;

/** The spec's description of the setting a readiness path names, if it is one. */
function settingAt(forms, provider, path) {
  const [field, name] = path;
  let settings = [];
  if (field === "externalGateway") settings = forms.externalGateway.settings;
  else if (field === "patientRestriction") settings = forms.patientRestriction.settings;
  else if (provider) settings = forms.providers[provider]?.sections.find((s) => s.field === field)?.settings || [];
  return settings.find((s) => s.name === name) ?? null;
}

function labelAt(forms, provider, path) {
  const dotted = ["externalGateway", "patientRestriction"].includes(path[0])
    ? path.join(".")
    : `providers.${provider}.${path.join(".")}`;
  return labelOf(forms, provider, dotted);
}

export function Promotion({ api, tenant, forms, may, version, onChanged }) {
  return html`<div>
    <${Export} api=${api} tenant=${tenant} />
    <${Import} api=${api} tenant=${tenant} forms=${forms} may=${may} version=${version} onChanged=${onChanged} />
  </div>`;
}

function Export({ api, tenant }) {
  const [file, setFile] = useState(null); // { url, name }
  const [error, setError] = useState(null);
  useEffect(() => () => file && URL.revokeObjectURL(file.url), [file]);

  const exportNow = async () => {
    try {
      const data = await api.query(EXPORT_SETTINGS, { tenantId: tenant });
      if (data.exportSettings === null) {
        setError(`Nothing to export: ${tenant} has no settings yet.`);
        return;
      }
      const blob = new Blob([JSON.stringify(data.exportSettings, null, 2) + "\n"], { type: "application/json" });
      setFile({ url: URL.createObjectURL(blob), name: `${tenant}-settings.json` });
      setError(null);
    } catch (e) {
      setError(e.message);
    }
  };

  return html`<section class="section" aria-labelledby="h-export">
    <h2 id="h-export">Export ${tenant}</h2>
    <p class="help">The settings as a JSON document to import into another tenant (a sandbox's configuration promoted to production). It holds no secrets and no identities: no external gateway id, signing key or fetched key set.</p>
    <div class="actions">
      <button type="button" onClick=${exportNow}>Export settings</button>
      ${file && html`<a href=${file.url} download=${file.name}>Download ${file.name}</a>`}
    </div>
    ${error && html`<p class="error" role="alert">${error}</p>`}
  </section>`;
}

function Import({ api, tenant, forms, may, version, onChanged }) {
  const [text, setText] = useState("");
  const [preview, setPreview] = useState(null); // { document, expectedVersion, changes, readiness }
  const [errors, setErrors] = useState([]);
  const [message, setMessage] = useState(null);
  const [busy, setBusy] = useState(false);
  const allowed = may(forms.actions.importSettings);

  const edit = (value) => {
    setText(value);
    setPreview(null);
    setMessage(null);
  };
  const choose = async (event) => {
    const chosen = event.currentTarget.files?.[0];
    if (chosen) edit(await chosen.text());
  };

  const send = async (document, dryRun, expectedVersion) =>
    (await api.mutate(IMPORT_SETTINGS, { tenantId: tenant, document, dryRun, expectedVersion })).importSettings;

  const refused = (result, verb) => {
    if (result.__typename === "VersionConflict") {
      setErrors([`Not ${verb}: the settings of ${tenant} changed since you opened them (now version ${result.currentVersion}). Preview again.`]);
    } else if (result.__typename === "ValidationFailed") {
      setErrors(errorsInWords(forms, forms.active, result.errors).map((e) => `Not ${verb}: ${e}`));
    }
  };

  const previewNow = async (event) => {
    event.preventDefault();
    setMessage(null);
    setPreview(null);
    let document;
    try {
      document = JSON.parse(text);
    } catch (e) {
      setErrors([`This is not a settings document: it is not valid JSON (${e.message}).`]);
      return;
    }
    setBusy(true);
    try {
      const result = await send(document, true, version);
      if (result.__typename === "ImportPreview") {
        setErrors([]);
        setPreview({ document, expectedVersion: version, changes: result.changes, readiness: result.readiness });
      } else refused(result, "previewed");
    } catch (e) {
      setErrors([`Not previewed: ${e.message}`]);
    } finally {
      setBusy(false);
    }
  };

  const importNow = async () => {
    setBusy(true);
    try {
      const result = await send(preview.document, false, preview.expectedVersion);
      if (result.__typename === "SettingsSaved") {
        setPreview(null);
        setErrors([]);
        setText("");
        setMessage(`Imported: ${tenant} is now at version ${result.settings.version}.`);
        onChanged();
      } else {
        setPreview(null);
        refused(result, "imported");
      }
    } catch (e) {
      setErrors([`Not imported: ${e.message}`]);
    } finally {
      setBusy(false);
    }
  };

  if (!allowed) {
    return html`<section class="section" aria-labelledby="h-import">
      <h2 id="h-import">Import into ${tenant}</h2>
      <p class="help">${missing(forms, forms.actions.importSettings, "Importing settings")}</p>
    </section>`;
  }
  const provider = preview?.readiness.provider ?? forms.active;
  const stillMissing = preview?.readiness.missing ?? [];
  const secrets = stillMissing.filter((check) => settingAt(forms, provider, check.path)?.kind === "secret");
  const others = stillMissing.filter((check) => !secrets.includes(check));
  return html`<section class="section" aria-labelledby="h-import">
    <h2 id="h-import">Import into ${tenant}</h2>
    <p class="help">${tenant} keeps its own secrets, external gateway id and signing keys. You see what would change before anything is stored.</p>
    <form onSubmit=${previewNow} novalidate>
      <div class="field">
        <label for="import-file">Settings file</label>
        <input id="import-file" type="file" accept="application/json,.json" onChange=${choose} />
      </div>
      <div class="field">
        <label for="import-text">Settings document (JSON)</label>
        <textarea id="import-text" rows="6" spellcheck="false" value=${text}
          aria-describedby="import-text-help" aria-invalid=${errors.length ? "true" : "false"}
          onInput=${(e) => edit(e.currentTarget.value)}></textarea>
        <p id="import-text-help" class="help">Paste an exported document, or choose its file above.</p>
      </div>
      ${errors.map((e) => html`<p class="error" role="alert">${e}</p>`)}
      <div class="actions">
        <button type="submit" disabled=${busy || !text.trim()}>Preview import</button>
        <span class="status" role="status">${busy ? "Working…" : message || ""}</span>
      </div>
    </form>
    ${preview && html`<div class="preview" role="region" aria-label="Import preview">
      <h3>What importing into ${tenant} would change</h3>
      <${ChangeList} forms=${forms} provider=${provider} changes=${preview.changes}
        empty=${`Nothing: ${tenant} already has these settings.`} />
      <h3>Readiness afterwards</h3>
      ${preview.readiness.ready
        ? html`<p class="ready">Ready</p>`
        : html`<p class="not-ready">Not ready: ${stillMissing.length} ${stillMissing.length === 1 ? "setting" : "settings"} missing</p>`}
      ${others.length > 0 && html`<ul class="changes">
        ${others.map((check) => html`<li>${labelAt(forms, provider, check.path)}: ${check.message}</li>`)}
      </ul>`}
      ${secrets.length > 0 && html`<h3>Secrets still needed</h3>
        <p class="help">An export never carries secrets: set these on ${tenant} after the import.</p>
        <ul class="changes">
          ${secrets.map((check) => html`<li>${labelAt(forms, provider, check.path)}</li>`)}
        </ul>`}
      <div class="actions">
        <button type="button" disabled=${busy} onClick=${importNow}>Import into ${tenant}</button>
        <button type="button" class="quiet" onClick=${() => setPreview(null)}>Cancel</button>
      </div>
    </div>`}
  </section>`;
}

// The tenant's records beside its settings page: a tab list (Settings, History, Audit log,
// Export and import), the history of versions with who, when and what changed, and rollback to
// a version after a confirmation that says what will change.
import { html } from "htm/preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { AuditLog } from "./audit.js";
import { ChangeList, When, errorsInWords, missing } from "./changes.js";
import { Promotion } from "./promotion.js";

export const VIEWS = [
  { key: "settings", title: "Settings" },
  { key: "history", title: "History" },
  { key: "audit", title: "Audit log" },
  { key: "promotion", title: "Export and import" },
];

export const PANEL_ID = "view-panel";
export const tabId = (key) => `tab-${key}`;

// The permissions of the operations these views send, as each one's "Requires:" says in
// schema.graphql.
const PAGE_SIZE = 10;

const HISTORY = `query History($tenantId: ID!, $first: Int!, $before: Int) {
  settingsHistory(tenantId: $tenantId, first: $first, before: $before) {
    versions { id version changedAt actor changedBlocks }
    hasMore nextBefore
  }
}`;

const DIFF_SELECTION = `__typename
    ... on SettingsDiff { changes { path before after } }
    ... on ValidationFailed { errors { path code message } }`;

/** One request for what each listed version changed: the diff from the version before it. */
function diffsQuery(versions) {
  const fields = versions.map(
    (v) => `v${v} : settingsDiff(tenantId: $tenantId, fromVersion: ${v - 1}, toVersion: ${v}) { ${DIFF_SELECTION} }`,
  );
  return `query HistoryChanges($tenantId: ID!) {\n  ${fields.join("\n  ")}\n}`;
}

const TO_VERSION = `query RollbackChanges($tenantId: ID!, $fromVersion: Int!, $toVersion: Int!) {
  settingsDiff(tenantId: $tenantId, fromVersion: $fromVersion, toVersion: $toVersion) { ${DIFF_SELECTION} }
}`;

const ROLLBACK_SETTINGS = `mutation Rollback($tenantId: ID!, $toVersion: Int!, $expectedVersion: Int) {
  rollbackSettings(tenantId: $tenantId, toVersion: $toVersion, expectedVersion: $expectedVersion) {
    __typename
    ... on SettingsSaved { settings { id version } }
    ... on ValidationFailed { errors { path code message } }
    ... on VersionConflict { currentVersion }
  }
}`;

/** The tab list: arrow keys, Home and End move between tabs, as the ARIA tabs pattern says. */
export function Views({ current, onChoose }) {
  const list = useRef(null);
  const move = (event) => {
    const index = VIEWS.findIndex((v) => v.key === current);
    const next = {
      ArrowRight: (index + 1) % VIEWS.length,
      ArrowLeft: (index + VIEWS.length - 1) % VIEWS.length,
      Home: 0,
      End: VIEWS.length - 1,
    }[event.key];
    if (next === undefined) return;
    event.preventDefault();
    onChoose(VIEWS[next].key);
    list.current?.querySelector(`#${tabId(VIEWS[next].key)}`)?.focus();
  };
  return html`<div class="views" role="tablist" aria-label="Views" ref=${list} onKeyDown=${move}>
    ${VIEWS.map(
      (v) => html`<button type="button" role="tab" id=${tabId(v.key)} key=${v.key}
        aria-selected=${v.key === current ? "true" : "false"} aria-controls=${PANEL_ID}
        tabIndex=${v.key === current ? 0 : -1} onClick=${() => onChoose(v.key)}>${v.title}</button>`,
    )}
  </div>`;
}

/** The panel of a view other than the settings page. */
export function ViewPanel(props) {
  const { view } = props;
  const Body = { history: History, audit: AuditLog, promotion: Promotion }[view];
  return html`<div class="records" role="tabpanel" id=${PANEL_ID} aria-labelledby=${tabId(view)}>
    <${Body} ...${props} />
  </div>`;
}

function History({ api, tenant, forms, may, version, onChanged }) {
  const [versions, setVersions] = useState([]);
  const [diffs, setDiffs] = useState({});
  const [more, setMore] = useState(null); // nextBefore, when older versions remain
  const [error, setError] = useState(null);
  const [loading, setLoading] = useState(true);
  const [confirm, setConfirm] = useState(null); // { to, current, changes }
  const [message, setMessage] = useState(null);

  const fetchPage = useCallback(
    async (before) => {
      const data = await api.query(HISTORY, { tenantId: tenant, first: PAGE_SIZE, before });
      const page = data.settingsHistory;
      const numbers = page.versions.map((v) => v.version);
      const changes = {};
      if (numbers.length) {
        const found = await api.query(diffsQuery(numbers), { tenantId: tenant });
        for (const n of numbers) changes[n] = found[`v${n}`]?.changes ?? [];
      }
      return { page, changes };
    },
    [api, tenant],
  );

  const reload = useCallback(async () => {
    try {
      const { page, changes } = await fetchPage(null);
      setVersions(page.versions);
      setDiffs(changes);
      setMore(page.hasMore ? page.nextBefore : null);
      setError(null);
    } catch (e) {
      setError(e.message);
    } finally {
      setLoading(false);
    }
  }, [fetchPage]);

  // Again whenever the settings page sees a new version (saved here, elsewhere, or rolled back).
  useEffect(() => {
    reload();
  }, [reload, version]);

  const older = async () => {
    try {
      const { page, changes } = await fetchPage(more);
      setVersions((all) => [...all, ...page.versions]);
      setDiffs((all) => ({ ...all, ...changes }));
      setMore(page.hasMore ? page.nextBefore : null);
    } catch (e) {
      setError(e.message);
    }
  };

  const current = versions[0]?.version ?? 0;
  const provider = forms.active;

  const ask = async (to) => {
    setMessage(null);
    try {
      const data = await api.query(TO_VERSION, { tenantId: tenant, fromVersion: current, toVersion: to });
      setConfirm({ to, current, changes: data.settingsDiff.changes ?? [] });
    } catch (e) {
      setMessage({ error: true, text: e.message });
    }
  };

  const rollback = async () => {
    const { to, current: expectedVersion } = confirm;
    try {
      const data = await api.mutate(ROLLBACK_SETTINGS, { tenantId: tenant, toVersion: to, expectedVersion });
      const result = data.rollbackSettings;
      setConfirm(null);
      if (result.__typename === "SettingsSaved") {
        setMessage({ text: `Rolled back: version ${result.settings.version} has the settings of version ${to}.` });
        await reload();
        onChanged();
      } else if (result.__typename === "VersionConflict") {
        setMessage({ error: true, text: `Not rolled back: the settings changed meanwhile (now version ${result.currentVersion}). Look at the new version, then roll back again if you still want to.` });
        await reload();
      } else {
        setMessage({ error: true, text: `Not rolled back: ${errorsInWords(forms, provider, result.errors).join(" ")}` });
      }
    } catch (e) {
      setConfirm(null);
      setMessage({ error: true, text: `Not rolled back: ${e.message}` });
    }
  };

  const allowed = may(forms.actions.rollbackSettings);
  return html`<section class="section" aria-labelledby="h-history">
    <h2 id="h-history">History of ${tenant}</h2>
    ${!allowed && html`<p class="help">${missing(forms, forms.actions.rollbackSettings, "Rolling back to a version")}</p>`}
    ${message && html`<p class=${message.error ? "error" : "status"} role=${message.error ? "alert" : "status"}>${message.text}</p>`}
    ${confirm && html`<${ConfirmRollback} forms=${forms} provider=${provider} confirm=${confirm}
      onConfirm=${rollback} onCancel=${() => setConfirm(null)} />`}
    ${error && html`<p class="error" role="alert">${error}</p>`}
    ${loading && html`<p aria-busy="true">Loading the history…</p>`}
    ${!loading && !versions.length && !error && html`<p>No versions yet: nothing has been saved.</p>`}
    <ol class="versions" aria-label="Versions, newest first">
      ${versions.map(
        (v) => html`<li key=${v.id} class="version-entry" aria-labelledby=${`v-${v.version}`}>
          <h3 id=${`v-${v.version}`}>Version ${v.version}${v.version === current ? " (current)" : ""}</h3>
          <p class="who">By <strong>${v.actor}</strong> on <${When} at=${v.changedAt} /></p>
          <${ChangeList} forms=${forms} provider=${provider} changes=${diffs[v.version] ?? []} />
          ${allowed && v.version !== current &&
          html`<button type="button" class="quiet" onClick=${() => ask(v.version)}>Roll back to version ${v.version}</button>`}
        </li>`,
      )}
    </ol>
    ${more !== null && html`<button type="button" class="quiet" onClick=${older}>Show older versions</button>`}
  </section>`;
}

function ConfirmRollback({ forms, provider, confirm, onConfirm, onCancel }) {
  const first = useRef(null);
  useEffect(() => first.current?.focus(), []);
  return html`<div class="confirm" role="alertdialog" aria-labelledby="rollback-title" aria-describedby="rollback-what">
    <h3 id="rollback-title">Roll back to version ${confirm.to}?</h3>
    <p id="rollback-what">This stores version ${confirm.current + 1} with the settings of version ${confirm.to}.
      External gateway ids and OAuth signing keys stay as they are now. What will change:</p>
    <${ChangeList} forms=${forms} provider=${provider} changes=${confirm.changes}
      empty=${`Nothing: version ${confirm.to} has the settings of version ${confirm.current}.`} />
    <div class="actions">
      <button type="button" ref=${first} onClick=${onConfirm}>Roll back</button>
      <button type="button" class="quiet" onClick=${onCancel}>Cancel</button>
    </div>
  </div>`;
}

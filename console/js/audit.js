// The tenant's audit log, newest first and paged: who did what, when, how it ended, and the
// request id to find the request in the gateway's logs.
import { html } from "htm/preact";
import { useCallback, useEffect, useState } from "preact/hooks";
import { ChangeList, When, missing } from "./changes.js";
import { Integrity } from "./integrity.js";

// As auditLog's "Requires:" says in schema.graphql.
const PAGE_SIZE = 20;

const AUDIT_LOG = `query AuditLog($tenantId: ID!, $first: Int!, $before: String) {
  auditLog(tenantId: $tenantId, first: $first, before: $before) {
    entries {
      id at subject roles operation outcome version requestId missingPermission
      changes { path before after }
    }
    hasMore nextBefore
  }
}`;

function outcomeInWords(entry) {
  if (entry.outcome === "SAVED") return entry.version ? `Saved as version ${entry.version}` : "Saved";
  if (entry.outcome === "DENIED") {
    return entry.missingPermission ? `Refused: missing ${entry.missingPermission}` : "Refused";
  }
  return entry.outcome;
}

export function AuditLog({ api, tenant, forms, may, version }) {
  const [entries, setEntries] = useState([]);
  const [more, setMore] = useState(null);
  const [error, setError] = useState(null);
  const [loading, setLoading] = useState(true);
  const allowed = may(forms.actions.auditLog);

  const fetchPage = useCallback(
    async (before) => (await api.query(AUDIT_LOG, { tenantId: tenant, first: PAGE_SIZE, before })).auditLog,
    [api, tenant],
  );

  useEffect(() => {
    if (!allowed) return;
    fetchPage(null)
      .then((page) => {
        setEntries(page.entries);
        setMore(page.hasMore ? page.nextBefore : null);
        setError(null);
      })
      .catch((e) => setError(e.message))
      .finally(() => setLoading(false));
  }, [fetchPage, allowed, version]);

  const older = async () => {
    try {
      const page = await fetchPage(more);
      setEntries((all) => [...all, ...page.entries]);
      setMore(page.hasMore ? page.nextBefore : null);
    } catch (e) {
      setError(e.message);
    }
  };

  return html`<section class="section" aria-labelledby="h-audit">
    <h2 id="h-audit">Audit log of ${tenant}</h2>
    ${!allowed
      ? html`<p class="help">${missing(forms, forms.actions.auditLog, "Reading the audit log")}</p>`
      : html`
        <${Integrity} api=${api} tenant=${tenant} />
        ${error && html`<p class="error" role="alert">${error}</p>`}
        ${loading && html`<p aria-busy="true">Loading the audit log…</p>`}
        ${!loading && !entries.length && !error && html`<p>No entries yet.</p>`}
        ${entries.length > 0 && html`<div class="table-scroll"><table class="audit">
          <caption class="help">Newest first. A refused attempt by someone without standing on this tenant is not kept here.</caption>
          <thead><tr><th scope="col">When</th><th scope="col">Who</th><th scope="col">Operation</th>
            <th scope="col">Outcome</th><th scope="col">Request id</th></tr></thead>
          <tbody>
            ${entries.map(
              (entry) => html`<tr key=${entry.id}>
                <td><${When} at=${entry.at} /></td>
                <td>${entry.subject} <span class="help">(${entry.roles.join(", ")})</span></td>
                <td><code>${entry.operation}</code>
                  ${entry.changes.length > 0 &&
                  html`<details><summary>${entry.changes.length} ${entry.changes.length === 1 ? "setting" : "settings"} changed</summary>
                    <${ChangeList} forms=${forms} provider=${forms.active} changes=${entry.changes} />
                  </details>`}
                </td>
                <td class=${entry.outcome === "DENIED" ? "denied" : ""}>${outcomeInWords(entry)}</td>
                <td><code>${entry.requestId}</code></td>
              </tr>`,
            )}
          </tbody>
        </table></div>`}
        ${more !== null && html`<button type="button" class="quiet" onClick=${older}>Show older entries</button>`}`}
  </section>`;
}

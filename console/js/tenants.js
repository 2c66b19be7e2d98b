// The tenants the signed-in person may open, from the `tenants` query: every tenant for staff,
// their own for others. Filtered by EHR, readiness and last change on the gateway (an index,
// not every tenant assessed), searched by id among the rows loaded, a page at a time.
import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";

export const TENANTS = `query TenantDirectory($first: Int, $after: String, $provider: EhrProvider, $ready: Boolean, $changedSince: DateTime) {
  tenants(first: $first, after: $after, provider: $provider, ready: $ready, changedSince: $changedSince) {
    items { tenantId provider version ready missingCount changedAt changedBy }
    pageInfo { endCursor hasNextPage }
  }
}`;

const PAGE = 50;

function readinessText(row) {
  if (row.ready) return "Ready";
  return `Not ready: ${row.missingCount} missing`;
}

/** The directory: filters, the rows, and an Open button on each; `onRows` hears the rows. */
export function TenantDirectory({ api, forms, onChoose, onRows = () => {} }) {
  const [provider, setProvider] = useState("");
  const [ready, setReady] = useState("");
  const [since, setSince] = useState("");
  const [search, setSearch] = useState("");
  const [rows, setRows] = useState([]);
  const [next, setNext] = useState(null); // the cursor of the next page, if any
  const [problem, setProblem] = useState(null);
  const [busy, setBusy] = useState(false);

  const variables = (after) => ({
    first: PAGE,
    after,
    provider: provider || null,
    ready: ready === "" ? null : ready === "true",
    changedSince: since ? new Date(`${since}T00:00:00Z`).toISOString() : null,
  });
  const fetchPage = async (after, kept) => {
    setBusy(true);
    try {
      const data = await api.query(TENANTS, variables(after));
      const all = [...kept, ...data.tenants.items];
      setRows(all);
      onRows(all);
      setNext(data.tenants.pageInfo.hasNextPage ? data.tenants.pageInfo.endCursor : null);
      setProblem(null);
    } catch (error) {
      setProblem(`The tenants could not be listed: ${error.message}`);
    } finally {
      setBusy(false);
    }
  };
  useEffect(() => {
    fetchPage(null, []);
  }, [provider, ready, since]);

  const needle = search.trim().toLowerCase();
  const shown = needle ? rows.filter((row) => row.tenantId.toLowerCase().includes(needle)) : rows;
  const providers = forms.selectProvider.options;
  const labelOf = (value) => providers.find((o) => o.value === value)?.label ?? value;
  return html`<section class="directory" aria-labelledby="directory-title">
    <h2 id="directory-title">Directory</h2>
    <div class="filters">
      <div>
        <label for="directory-search">Search by id</label>
        <input id="directory-search" type="search" value=${search} spellcheck="false"
          onInput=${(e) => setSearch(e.currentTarget.value)} />
      </div>
      <div>
        <label for="directory-provider">EHR</label>
        <select id="directory-provider" value=${provider} onChange=${(e) => setProvider(e.currentTarget.value)}>
          <option value="">Any EHR</option>
          ${providers.map((o) => html`<option value=${o.value}>${o.label}</option>`)}
        </select>
      </div>
      <div>
        <label for="directory-ready">Readiness</label>
        <select id="directory-ready" value=${ready} onChange=${(e) => setReady(e.currentTarget.value)}>
          <option value="">Ready or not</option>
          <option value="true">Ready</option>
          <option value="false">Not ready</option>
        </select>
      </div>
      <div>
        <label for="directory-since">Changed since</label>
        <input id="directory-since" type="date" value=${since} onInput=${(e) => setSince(e.currentTarget.value)} />
      </div>
    </div>
    ${problem && html`<p class="error" role="alert">${problem}</p>`}
    <table class="tenants" aria-busy=${busy ? "true" : "false"}>
      <thead><tr><th scope="col">Id</th><th scope="col">EHR</th><th scope="col">Readiness</th><th scope="col">Last change</th><th scope="col"></th></tr></thead>
      <tbody>
        ${shown.map(
          (row) => html`<tr key=${row.tenantId}>
            <th scope="row"><code>${row.tenantId}</code></th>
            <td>${row.provider ? labelOf(row.provider) : "None chosen"}</td>
            <td>${readinessText(row)}</td>
            <td>Version ${row.version}${row.changedBy ? `, by ${row.changedBy}` : ""}${row.changedAt ? `, ${new Date(row.changedAt).toLocaleString()}` : ""}</td>
            <td><button type="button" class="quiet" aria-label=${`Configure ${row.tenantId}`} onClick=${() => onChoose(row.tenantId)}>Configure</button></td>
          </tr>`,
        )}
      </tbody>
    </table>
    <p role="status">${busy ? "Loading tenants…" : shown.length ? `${shown.length} tenant${shown.length === 1 ? "" : "s"} shown${next ? " (more to load)" : ""}.` : "No tenant matches."}</p>
    ${next && html`<button type="button" disabled=${busy} onClick=${() => fetchPage(next, rows)}>Load more tenants</button>`}
  </section>`;
}

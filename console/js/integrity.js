// On the audit log view: verify the tenant's history and audit log (auditIntegrity), and say
// whether they are as the gateway wrote them or which entry is the first broken link, in words.
import { html } from "htm/preact";
import { useState } from "preact/hooks";
import { When } from "./changes.js";

// As auditIntegrity's "Requires:" says in schema.graphql (the audit log view already needs it).
// A call verifies at most PAGE_SIZE entries; a longer walk continues from the call before's
// nextAfter until complete, so the page says how far it has got while a large tenant verifies.
const AUDIT_INTEGRITY = `query AuditIntegrity($tenantId: ID!, $first: Int!, $after: String) {
  auditIntegrity(tenantId: $tenantId, first: $first, after: $after) {
    tenantId intact complete nextAfter checkedEntries legacyEntries checkedAt
    firstBrokenLink { log version sequence entryId at reason message }
  }
}`;
const PAGE_SIZE = 1000;

const plural = (count, one, many) => `${count} ${count === 1 ? one : many}`;

/** Where the broken entry is, as a person finds it: a version of the history, an audit entry. */
function whereInWords(link) {
  if (link.log === "HISTORY") return `Settings history, version ${link.version}`;
  return link.sequence !== null ? `Audit log, entry ${link.sequence}` : `Audit log, entry ${link.entryId ?? "without a number"}`;
}

function Verdict({ result }) {
  const legacy = result.legacyEntries
    ? ` ${plural(result.legacyEntries, "older entry predates", "older entries predate")} the chaining and could not be verified.`
    : "";
  if (result.intact) {
    return html`<p class="ready" role="status">
      Intact: ${plural(result.checkedEntries, "entry", "entries")} of the history and audit log verified,
      none altered, removed, inserted or moved.${legacy} Checked <${When} at=${result.checkedAt} />.
    </p>`;
  }
  const link = result.firstBrokenLink;
  const sentence = link.message.charAt(0).toUpperCase() + link.message.slice(1);
  return html`<div role="alert">
    <p class="not-ready">Not intact: the first broken link is in ${whereInWords(link)}.</p>
    <p>${sentence}.${link.at && html` The entry says it was written <${When} at=${link.at} />.`}</p>
    <p class="help">${plural(result.checkedEntries, "entry", "entries")} verified before it.${legacy}
      Checked <${When} at=${result.checkedAt} />.</p>
  </div>`;
}

/** The Verify button and its verdict; rendered only for a role with audit:read. */
export function Integrity({ api, tenant }) {
  const [result, setResult] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [progress, setProgress] = useState(null);
  const verify = async () => {
    setBusy(true);
    setError(null);
    setResult(null);
    setProgress(0);
    try {
      let after = null;
      for (;;) {
        const variables = { tenantId: tenant, first: PAGE_SIZE, after };
        const page = (await api.query(AUDIT_INTEGRITY, variables)).auditIntegrity;
        if (page.complete) {
          setResult(page);
          break;
        }
        setProgress(page.checkedEntries);
        after = page.nextAfter;
      }
    } catch (e) {
      setResult(null);
      setError(`Could not verify: ${e.message}`);
    } finally {
      setBusy(false);
      setProgress(null);
    }
  };
  return html`<div class="integrity" aria-live="polite">
    <button type="button" onClick=${verify} disabled=${busy}>${busy ? "Verifying…" : "Verify history and audit log"}</button>
    <p class="help">Checks that every entry is chained to the one before it, as the gateway wrote it.</p>
    ${progress !== null && html`<p role="status" aria-busy="true">
      Verifying: ${plural(progress, "entry", "entries")} verified so far, none broken.</p>`}
    ${error && html`<p class="error" role="alert">${error}</p>`}
    ${result && html`<${Verdict} result=${result} />`}
  </div>`;
}

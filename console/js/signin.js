// Sign-in in development mode: a token minted with `ehr-gateway token`, pasted. It is kept in
// memory only (a reload signs out). Staff tokens (tenants "*") choose a tenant by its id. Once a
// token expires, the page says so and asks for a new one above the page, which stays.
import { html } from "htm/preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { claimsOf } from "./api.js";

/** The token field and its Sign in button; `onSignIn(token, claims)` when one reads as a token. */
function TokenForm({ onSignIn, error, children }) {
  const [token, setToken] = useState("");
  const [problem, setProblem] = useState(null);
  const submit = (event) => {
    event.preventDefault();
    const text = token.trim();
    if (!text) return setProblem("Paste a token first.");
    try {
      const claims = claimsOf(text);
      setProblem(null);
      onSignIn(text, claims);
    } catch (e) {
      setProblem(e.message);
    }
  };
  const shown = problem || error;
  return html`<form onSubmit=${submit} novalidate>
      ${children}
      <label for="token">Token</label>
      <textarea id="token" rows="4" spellcheck="false" autocomplete="off" value=${token}
        aria-invalid=${shown ? "true" : undefined} aria-describedby=${shown ? "token-error" : undefined}
        onInput=${(e) => setToken(e.currentTarget.value)}></textarea>
      ${shown && html`<p id="token-error" class="error" role="alert">${shown}</p>`}
      <button type="submit">Sign in</button>
    </form>`;
}

export function SignIn({ onSignIn, error }) {
  return html`<main class="signin">
    <h1>EHR integration settings</h1>
    <${TokenForm} onSignIn=${onSignIn} error=${error}>
      <p>
        This gateway runs in development mode: it accepts tokens it minted itself. In the
        gateway's directory, run
      </p>
      <pre><code>ehr-gateway token --tenant acme --role editor</code></pre>
      <p>
        (<code>--role</code> may be repeated: viewer, editor, integrator; <code>--tenant '*'</code>
        covers every tenant), then paste the token it prints. It is kept in this page's memory
        only: reloading the page signs you out.
      </p>
    <//>
  </main>`;
}

/**
 * Above the page once the sign-in has expired: says so, and signs in again (a new token pasted,
 * or the issuer in a popup) without leaving the page, so unsaved edits stay on screen.
 */
export function SignInAgain({ reason, onSignIn, onIssuer, error }) {
  const [problem, setProblem] = useState(null);
  const again = async () => {
    try {
      setProblem(null);
      await onIssuer();
    } catch (e) {
      setProblem(e.message);
    }
  };
  const shown = problem || error;
  return html`<section class="signin-again" aria-labelledby="signin-again-title">
    <h2 id="signin-again-title">Sign in again</h2>
    <p role="alert">${reason} Your unsaved edits are kept: sign in again to save them.</p>
    ${onIssuer
      ? html`${shown && html`<p class="error" role="alert">${shown}</p>`}
          <button type="button" onClick=${again}>Sign in again</button>`
      : html`<${TokenForm} onSignIn=${onSignIn} error=${shown}>
          <p>Paste a new token from <code>ehr-gateway token</code>.</p>
        <//>`}
  </section>`;
}

/** The tenants a token names: null for staff (every tenant). */
export function tenantsOf(claims) {
  const tenants = claims.tenants;
  if (tenants === "*" || (Array.isArray(tenants) && tenants.includes("*"))) return null;
  return Array.isArray(tenants) ? tenants : tenants ? [tenants] : [];
}

// The gateway's tenant id rule (ehr/tenants.py), checked when Open is pressed: a malformed id
// is refused beside the Tenant field rather than opened as an empty tenant no save can reach.
const TENANT_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const TENANT_ID_RULE = "Must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit.";

/**
 * The Tenant field and its Open button. Opening another tenant with unsaved edits asks first,
 * as Sign out does: `unsaved()` names the sections holding some. `problem` is the gateway's
 * refusal of the open tenant's id.
 */
export function TenantChoice({ tenants, current, onChoose, known = [], unsaved = () => [], problem = null }) {
  const [typed, setTyped] = useState(current || "");
  const [invalid, setInvalid] = useState(null);
  const [asking, setAsking] = useState(null); // { tenant, sections } when warned
  const confirm = useRef(null);
  useEffect(() => setTyped(current || ""), [current]); // chosen elsewhere: from the directory
  useEffect(() => confirm.current?.focus(), [asking]);
  const submit = (event) => {
    event.preventDefault();
    const chosen = typed.trim();
    if (!chosen) return;
    if (!TENANT_ID.test(chosen)) {
      setInvalid(`Tenant id “${chosen}” refused: ${TENANT_ID_RULE}`);
      return;
    }
    setInvalid(null);
    const sections = chosen === current ? [] : unsaved();
    if (sections.length) setAsking({ tenant: chosen, sections });
    else onChoose(chosen);
  };
  const open = () => {
    const chosen = asking.tenant;
    setAsking(null);
    onChoose(chosen);
  };
  const error = invalid || problem;
  // Staff may act on every tenant: they type its id (a new tenant has none listed yet), with
  // the tenants the directory listed as suggestions.
  return html`<form class="tenant" onSubmit=${submit}>
    <label for="tenant">Tenant</label>
    ${tenants === null
      ? html`<input id="tenant" type="text" list="tenant-list" value=${typed}
          spellcheck="false" aria-describedby=${error ? "tenant-error tenant-help" : "tenant-help"}
          aria-invalid=${error ? "true" : undefined}
          onInput=${(e) => setTyped(e.currentTarget.value)} />
          <datalist id="tenant-list">${known.map((row) => html`<option value=${row.tenantId}>${row.provider ?? ""}</option>`)}</datalist>
          <span id="tenant-help" class="help">The tenant's id.</span>`
      : html`<select id="tenant" value=${typed} onChange=${(e) => setTyped(e.currentTarget.value)}>
          <option value="">Choose a tenant</option>
          ${tenants.map((t) => html`<option value=${t}>${t}</option>`)}
        </select>`}
    <button type="submit">Open</button>
    ${error && html`<p id="tenant-error" class="error" role="alert">${error}</p>`}
    ${asking &&
    html`<section class="sign-out-warning" aria-labelledby="open-tenant-title">
      <h2 id="open-tenant-title">Open ${asking.tenant} with unsaved edits?</h2>
      <p role="alert">Unsaved edits in ${asking.sections.join(", ")} will be lost when you open ${asking.tenant}.</p>
      <button type="button" ref=${confirm} onClick=${open}>Open ${asking.tenant} and discard edits</button>
      <button type="button" class="quiet" onClick=${() => setAsking(null)}>Stay on ${current}</button>
    </section>`}
  </form>`;
}

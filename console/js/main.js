// The admin console: sign in, choose a tenant, and edit its integration settings section by
// section, with readiness beside the form and changes saved elsewhere arriving live.
import "./env.js";
import { html, render } from "htm/preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { connect, describe } from "./api.js";
import * as documents from "./documents.js";
import { SectionActions } from "./actions.js";
import { PANEL_ID, ViewPanel, Views, tabId } from "./history.js";
import { Readiness } from "./readiness.js";
import { Section, sectionsFor } from "./sections.js";
import { OpenIdSignIn, Tokens, handedToOpener, signInAgain, signInSetup } from "./openid.js";
import { SignIn, SignInAgain, TenantChoice, tenantsOf } from "./signin.js";
import { SignOut } from "./signout.js";
import { TenantDirectory } from "./tenants.js";
import { toInput } from "./values.js";

const forms = await (await fetch("./schema.json")).json();
const setup = signInSetup(); // the OpenID issuer's, when the gateway runs behind one

function permissionsOf(claims) {
  const roles = Array.isArray(claims.roles) ? claims.roles : [claims.roles];
  return new Set(roles.flatMap((role) => forms.roles[role] || []));
}

/** Which section and setting a settingsDiff path names ("providers.EPIC.fhir.useBatch"). */
function locate(path) {
  const parts = path.split(".");
  if (parts[0] === "providers" && parts.length >= 4) return [parts[2], parts[3]];
  if (parts[0] === "providers" && parts.length === 3) return [parts[2], null];
  if (parts[0] === "provider") return ["provider", "provider"];
  return [parts[0], parts[1] ?? null];
}

/** A gateway message as a person reads it: settings named by their labels, not API names. */
function inWords(message, settings) {
  let text = message;
  for (const setting of settings) {
    text = text.replace(new RegExp(`\\b${setting.name}\\b`, "g"), setting.label);
  }
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** An EHR as the provider drop-down names it. */
function ehrName(provider) {
  return forms.selectProvider.options.find((o) => o.value === provider)?.label ?? provider ?? "none";
}

function App() {
  const [session, setSession] = useState(null); // { api, claims, permissions }
  const [signInError, setSignInError] = useState(null);
  const [tenant, setTenant] = useState(null);
  const [page, setPage] = useState(null); // { tenant, settings, readiness }
  const [loadError, setLoadError] = useState(null);
  const [states, setStates] = useState({}); // per section: edits, errors, notes, conflict...
  const [live, setLive] = useState("off");
  const [view, setView] = useState("settings"); // settings, history, audit or promotion
  const [known, setKnown] = useState([]); // the directory's rows: the tenant field suggests them
  // The EHR changed under unsaved edits: which sections' edits were for the EHR left behind.
  const [switched, setSwitched] = useState(null); // { from, to, sections }
  const [tenantError, setTenantError] = useState(null); // the gateway refused the tenant id
  // Each tenant's EHR as last seen (sign-in, directory): the page is read for it in one request.
  const hints = useRef({});
  const listed = (rows) => {
    for (const row of rows) hints.current[row.tenantId] = row.provider ?? null;
    setKnown(rows);
  };
  const versionRef = useRef(0);
  const providerRef = useRef(null);
  const ownVersions = useRef(new Set()); // versions this page saved: not news to it
  const saves = useRef(Promise.resolve());
  const statesRef = useRef(states);
  statesRef.current = states;

  const may = useCallback((permission) => !permission || session?.permissions.has(permission), [session]);
  const patch = (key, change) =>
    setStates((all) => ({ ...all, [key]: { ...(all[key] || {}), ...change(all[key] || {}) } }));

  // The token requests carry (a function: renewed tokens replace it), what ends it, and why
  // the page asks to sign in again.
  const tokenRef = useRef(() => null);
  const endRef = useRef(null);
  const [expired, setExpired] = useState(null);
  const expire = (reason) => {
    // Nothing stale is sent on: requests go out without a valid token until sign-in again.
    tokenRef.current = () => null;
    setExpired(reason);
  };

  // Signing in again (`session` set) keeps the page and its unsaved edits: same person only.
  const signIn = async (token, claims, tokens = null) => {
    const renewing = Boolean(session);
    if (renewing && claims.sub !== session.claims.sub) {
      tokens?.stop();
      setSignInError(`This page is signed in as ${session.claims.sub}: sign in as them to keep the unsaved edits, or reload the page to start over.`);
      return;
    }
    const probe = connect(tokens ? tokens.token() : token, forms);
    const own = tenantsOf(claims);
    try {
      const answer = await probe.query(documents.WHO_AM_I, { tenantId: own?.[0] ?? "console-sign-in-check" });
      if (own?.length) hints.current[own[0]] = answer.readiness.provider ?? null;
    } catch (error) {
      tokens?.stop();
      setSignInError(
        error.code === "UNAUTHENTICATED" ? `The gateway refused this token: ${error.message}` : error.message,
      );
      return;
    } finally {
      probe.close();
    }
    setSignInError(null);
    endRef.current?.stop();
    if (tokens) {
      endRef.current = tokens;
    } else if (claims.exp) {
      const timer = setTimeout(() => expire("Your sign-in expired."), Math.min(claims.exp * 1000 - Date.now(), 2 ** 31 - 1));
      endRef.current = { stop: () => clearTimeout(timer) };
    }
    tokenRef.current = tokens ? () => tokens.token() : () => token;
    setExpired(null);
    if (renewing) return;
    const api = connect(() => tokenRef.current(), forms, (state) => setLive(state));
    setSession({ api, claims, permissions: permissionsOf(claims) });
    if (own?.length === 1) setTenant(own[0]);
  };

  // Signing out forgets every token (the renewal timer and refresh token with them), closes the
  // live connection and drops what the page read: the next person starts from the sign-in page.
  const signOut = () => {
    endRef.current?.forget?.();
    endRef.current?.stop();
    endRef.current = null;
    tokenRef.current = () => null;
    session?.api.close();
    hints.current = {};
    ownVersions.current = new Set();
    setSession(null);
    setTenant(null);
    setPage(null);
    setStates({});
    setKnown([]);
    setView("settings");
    setExpired(null);
    setSignInError(null);
    setLoadError(null);
    setLive("off");
  };
  const unsaved = () => {
    const titles = Object.fromEntries((page ? sectionsFor(forms, page.settings) : []).map((s) => [s.key, s.title]));
    return Object.entries(statesRef.current)
      .filter(([, s]) => s.edits && Object.keys(s.edits).length)
      .map(([key]) => titles[key] ?? key);
  };

  const signInWithIssuer = ({ meta, answer }) => {
    const tokens = new Tokens(setup, meta, answer, expire);
    return signIn(tokens.token(), tokens.claims, tokens);
  };

  // Unsaved edits belong to the EHR they were typed for: sections of two EHRs share keys (FHIR
  // Settings), so once the provider changes none of them is carried into the other EHR's forms.
  // The page names the sections whose edits were dropped; the engineer decides what to retype.
  const leave = (from, to) => {
    const titles = Object.fromEntries(sectionsFor(forms, { provider: from }).map((s) => [s.key, s.title]));
    const dropped = Object.entries(statesRef.current)
      .filter(([key, s]) => key !== "provider" && s.edits && Object.keys(s.edits).length)
      .map(([key]) => titles[key] ?? key);
    const kept = statesRef.current.provider;
    const fresh = kept ? { provider: kept } : {};
    statesRef.current = fresh;
    setStates(fresh);
    setSwitched(dropped.length ? { from, to, sections: dropped } : null);
  };

  const load = useCallback(
    async (provider) => {
      if (!session || !tenant) return;
      try {
        let data = await session.api.query(documents.pageQuery(forms, provider ?? null), { tenantId: tenant });
        const actual = data.integrationSettings?.provider ?? null;
        if (actual !== (provider ?? null)) {
          data = await session.api.query(documents.pageQuery(forms, actual), { tenantId: tenant });
        }
        versionRef.current = data.integrationSettings?.version ?? 0;
        const before = providerRef.current;
        providerRef.current = actual;
        if (before && actual !== before) leave(before, actual);
        setPage({ tenant, settings: data.integrationSettings, readiness: data.readiness });
        setLoadError(null);
      } catch (error) {
        if (error.code === "UNAUTHENTICATED") expire("Your sign-in expired.");
        else setLoadError(error.message);
      }
    },
    [session, tenant],
  );

  useEffect(() => {
    setPage(null);
    setStates({});
    setSwitched(null);
    setTenantError(null);
    providerRef.current = null;
    load(hints.current[tenant] ?? null);
  }, [load]);

  // Live: a change saved elsewhere updates the fields this user has not touched; those they
  // have are flagged with who changed them in which version.
  // A tenant with no settings yet is followed from version 0: its first version, stored
  // elsewhere (the EHR chosen by a colleague), arrives as any other change does.
  // It starts once the tenant's page is read, from the version read.
  const ready = page?.tenant === tenant;
  useEffect(() => {
    if (!session || !tenant || !ready) return undefined;
    // Changes are taken one at a time, in order: each is compared with the one before it, so
    // a burst flags every touched field it changed, with the version that changed it.
    let seen = versionRef.current;
    let queue = Promise.resolve();
    const take = async (change) => {
      // A save of this page under way: its own version is known once it is answered.
      await saves.current;
      if (change.version <= seen) return;
      const from = seen;
      seen = change.version;
      if (!ownVersions.current.has(change.version)) {
        try {
          const data = await session.api.query(documents.SETTINGS_DIFF, {
            tenantId: tenant, fromVersion: from, toVersion: change.version,
          });
          for (const c of data.settingsDiff.changes || []) {
            const [key, name] = locate(c.path);
            const edits = statesRef.current[key]?.edits || {};
            if (name && name in edits) {
              patch(key, (s) => ({
                notes: { ...(s.notes || {}), [name]: `Changed by ${change.actor} in version ${change.version}; your unsaved value is kept.` },
              }));
            }
          }
        } catch {
          // The diff only annotates; the reload below still shows the new values.
        }
      }
      if (change.version > versionRef.current) await load(providerRef.current);
    };
    const stop = session.api.subscribe(
      documents.LIVE,
      { tenantId: tenant, sinceVersion: seen },
      ({ configurationChanged: change }) => {
        queue = queue.then(() => take(change));
      },
      (error) => setLive(`stopped (${error.message})`),
    );
    return () => stop();
  }, [session, tenant, load, ready]);

  useEffect(() => {
    const warn = (event) => {
      if (Object.values(statesRef.current).some((s) => s.edits && Object.keys(s.edits).length)) {
        event.preventDefault();
        event.returnValue = "";
      }
    };
    window.addEventListener("beforeunload", warn);
    return () => window.removeEventListener("beforeunload", warn);
  }, []);

  if (!session) {
    return setup
      ? html`<${OpenIdSignIn} setup=${setup} onSignIn=${signInWithIssuer} error=${signInError} />`
      : html`<${SignIn} onSignIn=${signIn} error=${signInError} />`;
  }

  const tenants = tenantsOf(session.claims);
  const header = html`<header class="top">
    <h1>EHR integration settings</h1>
    <${TenantChoice} tenants=${tenants} current=${tenant} onChoose=${setTenant} known=${known}
      unsaved=${unsaved} problem=${tenantError} />
    <p class="who">Signed in as <strong>${session.claims.sub}</strong> (${[].concat(session.claims.roles).join(", ")})
      ${tenant && html` · live updates: <span class="live">${live}</span>`}</p>
    <${SignOut} unsaved=${unsaved} onSignOut=${signOut} />
    ${tenant && html`<${Views} current=${view} onChoose=${setView} />`}
    ${expired && html`<${SignInAgain} reason=${expired} onSignIn=${signIn} error=${signInError}
      onIssuer=${setup && (async () => signInWithIssuer(await signInAgain(setup)))} />`}
  </header>`;
  if (!tenant) {
    return html`<div class="shell">${header}<main><p>Choose the tenant to configure.</p>
      <${TenantDirectory} api=${session.api} forms=${forms} onChoose=${setTenant} onRows=${listed} /></main></div>`;
  }
  if (loadError) return html`<div class="shell">${header}<main><p class="error" role="alert">${loadError}</p></main></div>`;
  // A page read for another tenant is not shown for this one, not even for the render before it
  // is dropped: a view mounted then (a file chosen to import) would be mounted again, empty.
  if (!page || page.tenant !== tenant) return html`<div class="shell">${header}<main aria-busy="true"><p>Loading ${tenant}…</p></main></div>`;

  const sections = sectionsFor(forms, page.settings);

  // A save is made on the version the page shows: changes that arrived live are on screen (a
  // touched field they changed is flagged), so only one the page has not seen is a conflict.
  const save = (section, version) => {
    // One save at a time, each on the version the one before it stored: saving a second
    // section while the first is on its way is not a conflict with oneself.
    patch(section.key, () => ({ saving: true, message: null }));
    saves.current = saves.current.then(() => saveNow(section, version ?? versionRef.current));
    return saves.current;
  };

  const saveNow = async (section, expectedVersion) => {
    const state = statesRef.current[section.key] || {};
    const edits = state.edits || {};
    const values = {};
    for (const setting of section.settings) {
      if (setting.name in edits) values[setting.name] = toInput(setting, edits[setting.name]);
    }
    // A number typed with its unit ("30 days") would be refused as a GraphQL variable, naming the
    // API path: it is explained beside its field instead, before anything is sent.
    const notNumbers = {};
    for (const setting of section.settings) {
      if (setting.kind === "number" && typeof values[setting.name] === "string") {
        notNumbers[setting.name] = `${setting.label} must be a whole number, without its unit: “${values[setting.name]}” is not one.`;
      }
    }
    if (Object.keys(notNumbers).length) {
      patch(section.key, () => ({ saving: false, errors: notNumbers, message: "Not saved: see the messages beside the fields." }));
      return;
    }
    let document;
    let variables = { tenantId: tenant, expectedVersion };
    if (section.key === "provider") {
      document = documents.SELECT_PROVIDER;
      variables.provider = values.provider;
    } else if (section.key === "externalGateway") {
      document = documents.SAVE_GATEWAY;
      const connection = {};
      for (const setting of section.settings) {
        connection[setting.name] = setting.name in values ? values[setting.name] : section.stored[setting.name] ?? null;
      }
      variables.connection = connection;
    } else if (section.key === "patientRestriction") {
      document = documents.SAVE_RESTRICTION;
      variables.expression = values.expression ?? null;
    } else {
      document = documents.saveBlock(section);
      variables.input = { [section.member]: values };
    }
    if (section.key !== "provider") {
      document = documents.withSavedSection(document, forms, page.settings?.provider, section.key);
    }
    try {
      const data = await session.api.mutate(document, variables);
      const result = Object.values(data)[0];
      if (result.__typename === "SettingsSaved") {
        ownVersions.current.add(result.settings.version);
        patch(section.key, () => ({
          saving: false, edits: {}, errors: {}, entries: {}, notes: {}, conflict: null,
          message: `Saved: version ${result.settings.version}.`,
        }));
        if (section.key === "provider") await load(values.provider);
        else await fromCache();
      } else if (result.__typename === "ValidationFailed") {
        const errors = {};
        const entries = {}; // per list or mapping setting: its refused entries, by index
        let refusedTenant = null;
        for (const error of result.errors) {
          const text = inWords(error.message, section.settings);
          // The tenant id is refused as the tenant, beside the Tenant field, not as a setting.
          if (error.path[0] === "tenantId") {
            refusedTenant = `Tenant id “${tenant}”: ${text}`;
            continue;
          }
          const at = error.path.findIndex((part) => section.settings.some((s) => s.name === part));
          const name = at >= 0 ? error.path[at] : null;
          const key = name || "_section";
          // An entry's path carries its index (0-based) and, for a mapping, its key.
          const index = name && /^\d+$/.test(error.path[at + 1] ?? "") ? Number(error.path[at + 1]) : null;
          // Entries are numbered as the form shows them: it keeps the empty ones a save skips.
          const rows = Array.isArray(edits[name]) ? edits[name] : [];
          const shown = rows.map((row, i) => [row, i]).filter(([row]) => Object.values(row).some((v) => String(v).trim() !== ""));
          const number = index === null ? null : (shown[index]?.[1] ?? index) + 1;
          const said = index === null ? text : `Entry ${number}${error.path[at + 2] ? `, ${error.path[at + 2]}` : ""}: ${text}`;
          if (index !== null) entries[name] = { ...(entries[name] || {}), [index]: error.path[at + 2] ?? null };
          errors[key] = errors[key] ? `${errors[key]} ${said}` : said;
        }
        setTenantError(refusedTenant);
        patch(section.key, () => ({
          saving: false, errors, entries,
          message: refusedTenant ? "Not saved: see the message beside the Tenant field." : "Not saved: see the messages beside the fields.",
        }));
      } else {
        const diff = await session.api.query(documents.SETTINGS_DIFF, {
          tenantId: tenant, fromVersion: expectedVersion, toVersion: result.currentVersion,
        });
        patch(section.key, () => ({
          saving: false,
          conflict: { currentVersion: result.currentVersion, changes: diff.settingsDiff.changes || [] },
          message: "Not saved: the settings changed meanwhile.",
        }));
      }
    } catch (error) {
      patch(section.key, () => ({ saving: false, message: null, errors: { _section: `Not saved: ${describe(error).message}` } }));
    }
  };

  // An action stored a version (or found one stored meanwhile: null): the page shows it, as
  // after a save.
  const changed = async (version) => {
    if (version) ownVersions.current.add(version);
    await load(page.settings?.provider);
  };

  // The save's answer has updated the cached settings: only readiness is read again.
  const fromCache = async () => {
    try {
      const fresh = await session.api.query(documents.READINESS, { tenantId: tenant });
      const data = await session.api.query(documents.pageQuery(forms, providerRef.current), { tenantId: tenant }, "cache-first");
      versionRef.current = data.integrationSettings?.version ?? 0;
      setPage({ tenant, settings: data.integrationSettings, readiness: fresh.readiness });
    } catch {
      await load(providerRef.current);
    }
  };

  const reapply = async (section) => {
    const version = statesRef.current[section.key]?.conflict?.currentVersion;
    await load(page.settings?.provider);
    patch(section.key, () => ({ conflict: null }));
    await save(section, version);
  };

  if (view !== "settings") {
    return html`<div class="shell">${header}
      <${ViewPanel} key=${tenant} view=${view} api=${session.api} tenant=${tenant} forms=${{ ...forms, active: page.settings?.provider }}
        may=${may} version=${page.settings?.version ?? 0} onChanged=${() => load(providerRef.current)} />
    </div>`;
  }

  return html`<div class="shell">
    ${header}
    <div class="layout" role="tabpanel" id=${PANEL_ID} aria-labelledby=${tabId(view)}>
      <main class="form" aria-label=${`Settings of ${tenant}`}>
        <p class="version">
          ${page.settings ? html`Version ${page.settings.version}, last changed by ${page.settings.updatedBy ?? "nobody"}` : "No settings yet: start by choosing the EHR."}
        </p>
        ${switched && html`<div class="conflict" role="alert">
          <p><strong>The EHR provider is now ${ehrName(switched.to)}</strong> (it was ${ehrName(switched.from)}): your unsaved edits in ${switched.sections.join(", ")} were for ${ehrName(switched.from)}, so they are not carried into ${ehrName(switched.to)}'s settings. Nothing of them was saved.</p>
          <button type="button" class="quiet" onClick=${() => setSwitched(null)}>Dismiss</button>
        </div>`}
        ${sections.map(
          (section) => html`<${Section} key=${section.key} forms=${{ ...forms, active: page.settings?.provider }} section=${section} state=${states[section.key] || {}} may=${may}
            onEdit=${(name, raw) => patch(section.key, (s) => ({ edits: { ...(s.edits || {}), [name]: raw }, message: null }))}
            onSave=${() => save(section)}
            onReapply=${() => reapply(section)}
            onDiscard=${() => patch(section.key, () => ({ edits: {}, errors: {}, entries: {}, notes: {}, conflict: null, message: null }))}
            actions=${html`<${SectionActions} forms=${forms} section=${section} settings=${page.settings} api=${session.api} tenant=${tenant} may=${may} onChanged=${changed}
              unsaved=${Object.keys(states[section.key]?.edits || {}).length > 0} />`} />`,
        )}
      </main>
      <${Readiness} forms=${forms} readiness=${page.readiness} provider=${page.settings?.provider} />
    </div>
  </div>`;
}

// In the sign-in popup, the page only hands the issuer's answer to the page that opened it.
if (!handedToOpener()) render(html`<${App} />`, document.getElementById("app"));

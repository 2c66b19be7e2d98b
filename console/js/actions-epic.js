// Epic's integration actions: the OAuth client's signing key (and the JWKS URL to register with
// Epic) and its token exchange test, beside the OAuth section; the JKU (discover, refresh, adopt
// one that requests named) and a pasted JWT to verify, beside the Epic section. A pasted token
// is sent to verifyEpicJwt and cleared from the page; only its verdict is shown.
import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import { ActionButton, Copyable, Outcome, change, reasonFor, refusals, useAction } from "./actions-kit.js";

export const EPIC_STATE = `query EpicActionState($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) {
    id version
    oauthJwksUrl
    oauthSigningKeys { kid createdAt }
    jkuKeySet { url fetchedAt issuerUrl keys { kid } }
    observedJku { url kid issuer count lastSeen }
  }
}`;

const SAVED = `__typename
    ... on SettingsSaved { settings { id version } }
    ... on ValidationFailed { errors { path code message } }
    ... on VersionConflict { currentVersion }`;

export const GENERATE_KEY = `mutation GenerateOAuthSigningKey($tenantId: ID!, $expectedVersion: Int) {
  generateOAuthSigningKey(tenantId: $tenantId, expectedVersion: $expectedVersion) {
    ${SAVED}
  }
}`;

export const TEST_TOKEN = `mutation TestOAuthToken($tenantId: ID!) {
  testOAuthToken(tenantId: $tenantId) {
    __typename
    ... on OAuthTokenTest { ok status tokenType scope expiresIn error errorDescription }
    ... on ValidationFailed { errors { path code message } }
  }
}`;

export const DISCOVER_JKU = `mutation DiscoverJku($tenantId: ID!, $issuerUrl: String, $expectedVersion: Int) {
  discoverJku(tenantId: $tenantId, issuerUrl: $issuerUrl, expectedVersion: $expectedVersion) {
    ${SAVED}
  }
}`;

export const REFRESH_JKU = `mutation RefreshJku($tenantId: ID!, $expectedVersion: Int) {
  refreshJku(tenantId: $tenantId, expectedVersion: $expectedVersion) {
    ${SAVED}
  }
}`;

export const ADOPT_JKU = `mutation AdoptObservedJku($tenantId: ID!, $url: String!, $expectedVersion: Int) {
  adoptObservedJku(tenantId: $tenantId, url: $url, expectedVersion: $expectedVersion) {
    ${SAVED}
  }
}`;

export const VERIFY_JWT = `query VerifyEpicJwt($tenantId: ID!, $token: String!) {
  verifyEpicJwt(tenantId: $tenantId, token: $token) {
    __typename
    ... on JwtVerified { claims kid alg }
    ... on JwtRejected { code message tokenJku }
  }
}`;

// The OAuth and Epic sections share one read of what their actions show, per shown version.
const reads = new WeakMap();

function readState(api, tenant, version, round) {
  if (!reads.has(api)) reads.set(api, new Map());
  const cache = reads.get(api);
  const key = `${tenant}\n${version}\n${round}`;
  if (!cache.has(key)) {
    cache.set(key, api.query(EPIC_STATE, { tenantId: tenant }).then((data) => data.integrationSettings));
  }
  return cache.get(key);
}

function useEpicState(api, tenant, version) {
  const [round, setRound] = useState(0);
  const [state, setState] = useState(null);
  const [problem, setProblem] = useState(null);
  useEffect(() => {
    let current = true;
    readState(api, tenant, version, round).then(
      (found) => current && (setState(found), setProblem(null)),
      (error) => current && setProblem(`What these actions show could not be read: ${error.message}`),
    );
    return () => {
      current = false;
    };
  }, [api, tenant, version, round]);
  return { state, problem, again: () => setRound((r) => r + 1) };
}

// OAuth errors and the gateway's own reasons for no answer, as a person reads them.
const TOKEN_ERRORS = {
  invalid_client: "the token URL did not accept the client's signed assertion (is the JWKS URL registered with Epic for this Epic Client ID?)",
  unauthorized_client: "this client may not use the client credentials grant",
  invalid_grant: "the token URL refused the grant",
  invalid_scope: "the token URL refused the requested scope",
  unsupported_grant_type: "the token URL does not support the client credentials grant",
  UNREACHABLE: "the token URL could not be reached",
  TIMEOUT: "the token URL did not answer in time",
  PRIVATE_ADDRESS: "the token URL is on a private network address, which the gateway does not call",
  NOT_JSON: "the token URL did not answer with JSON",
  REDIRECT_REFUSED: "the token URL answered with a redirect, which the gateway does not follow",
};

function tokenTestInWords(result) {
  if (result.__typename === "ValidationFailed") return { ok: false, text: `Not tested: ${refusals(result)}` };
  if (result.ok) {
    const scope = result.scope ? ` for the scope ${result.scope}` : "";
    const lasting = result.expiresIn ? `, valid for ${result.expiresIn} seconds` : "";
    return { ok: true, text: `Epic issued a ${result.tokenType ?? ""} token${scope}${lasting}. The token is not shown or kept.` };
  }
  const why = TOKEN_ERRORS[result.error] ?? `the token URL answered ${result.error ?? "without a token"}`;
  const said = result.errorDescription ? ` It said: “${result.errorDescription}”.` : "";
  const status = result.status ? ` (HTTP ${result.status})` : "";
  return { ok: false, text: `Refused${status}: ${why}.${said}` };
}

export function EpicOAuthActions({ forms, section, api, tenant, version, may, onChanged, unsaved }) {
  const { state, problem } = useEpicState(api, tenant, version);
  const generate = useAction();
  const test = useAction();
  const keyWhy = reasonFor(forms, may, "generateOAuthSigningKey");
  const testWhy = reasonFor(forms, may, "testOAuthToken");
  const keys = state?.oauthSigningKeys ?? [];
  // The test runs on the saved settings: typed ones would not be what it tries.
  const untested = () =>
    test.setOutcome({ ok: false, text: `Not tested: save the ${section.title} first; the test runs on the saved settings, not on the ones typed above.` });
  return html`<div class="section-actions">
    <div class="action-group" role="group" aria-labelledby="a-signing-key">
      <h3 id="a-signing-key">Signing key</h3>
      ${problem && html`<p class="error" role="alert">${problem}</p>`}
      <p class="help">
        ${keys.length
          ? `Signing with key ${keys[0].kid} (generated ${new Date(keys[0].createdAt).toLocaleString()})${keys.length > 1 ? `; key ${keys[1].kid} stays published until the next rotation` : ""}.`
          : "No signing key yet: generate one, then register the JWKS URL with Epic."}
        The private key never leaves the gateway.
      </p>
      ${state?.oauthJwksUrl &&
      html`<dl class="identity"><${Copyable} id="a-jwks-url" label="JWKS URL to register with Epic" value=${state.oauthJwksUrl} /></dl>`}
      <div class="actions">
        <${ActionButton} id="a-generate-key" reason=${keyWhy} busy=${generate.busy}
          onClick=${() => generate.run(() => change(api, GENERATE_KEY, { tenantId: tenant, expectedVersion: version }, onChanged))}>
          ${keys.length ? "Generate a new signing key" : "Generate a signing key"}</${ActionButton}>
      </div>
      <${Outcome} outcome=${generate.outcome} />
    </div>
    <div class="action-group" role="group" aria-labelledby="a-token-test">
      <h3 id="a-token-test">Token exchange test</h3>
      <p class="help">Asks the OAuth Token URL for a client credentials token, signed with the signing key. The token is not shown.</p>
      <div class="actions">
        <${ActionButton} id="a-test-token" reason=${testWhy} busy=${test.busy}
          onClick=${unsaved ? untested : () => test.run(async () => tokenTestInWords((await api.mutate(TEST_TOKEN, { tenantId: tenant })).testOAuthToken), "Asking for a token…")}>
          Test the token exchange</${ActionButton}>
      </div>
      <${Outcome} outcome=${test.outcome} />
    </div>
  </div>`;
}

/** What a token says of itself (unverified: only to name its issuer and key beside the verdict). */
function selfDescribed(token) {
  const read = (part) => JSON.parse(atob(part.replace(/-/g, "+").replace(/_/g, "/")));
  try {
    const [header, payload] = token.split(".");
    return { kid: read(header).kid ?? null, iss: read(payload).iss ?? null };
  } catch {
    return { kid: null, iss: null };
  }
}

function Verdict({ verdict }) {
  if (!verdict) return null;
  return html`<dl class="verdict" aria-label="Verdict of the pasted JWT">
    <dt>Verdict</dt><dd class=${verdict.accepted ? "ready" : "not-ready"}>${verdict.accepted ? "Accepted" : "Refused"}</dd>
    <dt>Issuer</dt><dd>${verdict.iss ?? "not named"}</dd>
    <dt>Key id</dt><dd>${verdict.kid ?? "not named"}</dd>
    ${verdict.reason && html`<dt>Reason</dt><dd>${verdict.reason}</dd>`}
  </dl>`;
}

function VerifyJwt({ forms, api, tenant, may }) {
  const [token, setToken] = useState("");
  const [verdict, setVerdict] = useState(null);
  const verify = useAction();
  const why = reasonFor(forms, may, "verifyEpicJwt");
  const submit = (event) => {
    event.preventDefault();
    const text = token.trim();
    if (!text) return verify.setOutcome({ ok: false, text: "Paste a JWT first." });
    // The token is a credential: it leaves the field as it is sent, and is never shown back.
    setToken("");
    setVerdict(null);
    return verify.run(async () => {
      const result = (await api.query(VERIFY_JWT, { tenantId: tenant, token: text })).verifyEpicJwt;
      const named = selfDescribed(text);
      if (result.__typename === "JwtVerified") {
        setVerdict({ accepted: true, iss: result.claims?.iss ?? named.iss, kid: result.kid });
        return { ok: true, text: "Accepted: the JWT is genuine." };
      }
      const other = result.tokenJku ? ` It names the key set ${result.tokenJku}.` : "";
      const reason = result.message.charAt(0).toUpperCase() + result.message.slice(1).replace(/\.?$/, ".");
      setVerdict({ accepted: false, iss: named.iss, kid: named.kid, reason: `${reason}${other}` });
      return { ok: false, text: "Refused: see the reason below." };
    }, "Verifying…");
  };
  return html`<form class="action-group" aria-labelledby="a-verify" onSubmit=${submit} novalidate>
    <h3 id="a-verify">Verify a JWT</h3>
    <div class="field">
      <label for="a-jwt">JWT to verify</label>
      <textarea id="a-jwt" rows="3" spellcheck="false" autocomplete="off" value=${token}
        aria-describedby="a-jwt-help" readOnly=${Boolean(why)}
        onInput=${(e) => setToken(e.currentTarget.value)}></textarea>
      <p id="a-jwt-help" class="help">A JWT as Epic sent it (pause and resume, click to call). It is checked against the JKU's keys, the JWT Issuer URL and the audience, then cleared from this page.</p>
    </div>
    <div class="actions">
      <button type="submit" disabled=${Boolean(why) || verify.busy}
        aria-describedby=${why ? "a-verify-why" : undefined}>Verify the JWT</button>
      ${why && html`<span id="a-verify-why" class="why-not">${why}</span>`}
    </div>
    <${Outcome} outcome=${verify.outcome} />
    <${Verdict} verdict=${verdict} />
  </form>`;
}

export function JkuActions({ forms, section, api, tenant, version, may, onChanged }) {
  const { state, problem, again } = useEpicState(api, tenant, version);
  const [issuer, setIssuer] = useState("");
  const [issuerError, setIssuerError] = useState(null);
  const jku = useAction();
  const adopt = useAction();
  const discoverWhy = reasonFor(forms, may, "discoverJku");
  const refreshWhy = reasonFor(forms, may, "refreshJku");
  const adoptWhy = reasonFor(forms, may, "adoptObservedJku");
  const keySet = state?.jkuKeySet;
  const observed = state?.observedJku ?? [];
  const configured = section.stored.jwtIssuerUrl;
  const discover = () =>
    jku.run(async () => {
      setIssuerError(null);
      const variables = { tenantId: tenant, issuerUrl: issuer.trim() || null, expectedVersion: version };
      const outcome = await change(api, DISCOVER_JKU, variables, onChanged);
      if (outcome.errors?.some((e) => e.path.includes("issuerUrl"))) setIssuerError(refusals({ errors: outcome.errors }));
      return outcome;
    }, "Fetching the key set…");
  return html`<div class="section-actions">
    <div class="action-group" role="group" aria-labelledby="a-jku">
      <h3 id="a-jku">JKU key set</h3>
      ${problem && html`<p class="error" role="alert">${problem}</p>`}
      <p class="help" role="status">
        ${keySet
          ? `Keys ${keySet.keys.map((k) => k.kid).join(", ")} from ${keySet.url}, fetched ${new Date(keySet.fetchedAt).toLocaleString()}.`
          : "No key set yet: discover it to verify Epic's JWTs."}
      </p>
      <div class=${`field${issuerError ? " invalid" : ""}`}>
        <label for="a-issuer">Issuer URL to discover from</label>
        <input id="a-issuer" type="url" spellcheck="false" value=${issuer} readOnly=${Boolean(discoverWhy)}
          placeholder=${configured ?? "https://"} aria-invalid=${issuerError ? "true" : undefined}
          aria-describedby=${[issuerError && "a-issuer-error", "a-issuer-help"].filter(Boolean).join(" ")}
          onInput=${(e) => setIssuer(e.currentTarget.value)} />
        ${issuerError && html`<p id="a-issuer-error" class="error">${issuerError}</p>`}
        <p id="a-issuer-help" class="help">Empty: the saved JWT Issuer URL${configured ? ` (${configured})` : ""}. With Enable Default JKU Server URL Pattern off, the JKU Server URL is checked instead.</p>
      </div>
      <div class="actions">
        <${ActionButton} id="a-discover" reason=${discoverWhy} busy=${jku.busy} onClick=${discover}>Discover the JKU</${ActionButton}>
        ${keySet && html`<${ActionButton} id="a-refresh" quiet reason=${refreshWhy} busy=${jku.busy}
          onClick=${() => jku.run(() => change(api, REFRESH_JKU, { tenantId: tenant, expectedVersion: version }, onChanged), "Fetching the key set…")}>
          Refresh the JKU</${ActionButton}>`}
      </div>
      <${Outcome} outcome=${jku.outcome} />
    </div>
    <div class="action-group" role="group" aria-labelledby="a-observed">
      <h3 id="a-observed">JKUs that requests named</h3>
      <p class="help">Key set URLs named by the JWTs of requests to the base path URL: nothing in them is verified until one is adopted.</p>
      ${observed.length
        ? html`<ul class="observed">
            ${observed.map(
              (seen, index) => html`<li>
                <code>${seen.url}</code>, key ${seen.kid ?? "not named"}, issuer ${seen.issuer ?? "not named"}, named ${seen.count} ${seen.count === 1 ? "time" : "times"}
                <${ActionButton} id=${`a-adopt-${index}`} quiet reason=${adoptWhy} busy=${adopt.busy}
                  onClick=${() => adopt.run(() => change(api, ADOPT_JKU, { tenantId: tenant, url: seen.url, expectedVersion: version }, onChanged), "Checking the key set…")}>
                  <span class="visually-hidden">Adopt ${seen.url}</span><span aria-hidden="true">Adopt</span></${ActionButton}>
              </li>`,
            )}
          </ul>`
        : html`<p>None seen yet.</p>`}
      <button type="button" class="quiet" onClick=${again}>Look again</button>
      <${Outcome} outcome=${adopt.outcome} />
    </div>
    <${VerifyJwt} forms=${forms} api=${api} tenant=${tenant} may=${may} />
  </div>`;
}

// Sign-in behind an OpenID issuer: authorization code with PKCE (S256, WebCrypto), a public
// client (no secret), tokens in memory only, renewed with the refresh token before they expire.
//
// A full-page redirect forgets everything in memory, so the PKCE verifier, state and nonce of
// the one sign-in under way wait in sessionStorage (this tab only, never another tab or a later
// visit) and are removed the moment the page comes back, before the code is exchanged. Signing
// in again while the page holds unsaved edits goes through a popup instead: the page keeps its
// state, and the verifier never leaves its memory.
import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import { claimsOf } from "./api.js";

const PENDING = "ehr-gateway-console-sign-in";
// A renewal that could not reach the issuer (a dropped connection, a network switch) is tried
// again after these pauses before the page asks to sign in again; a refusal is not retried.
const RENEWAL_RETRIES_MS = [2_000, 6_000];
const MESSAGE = "ehr-gateway-console-callback";

/** The issuer, client id and scopes the gateway wrote into the page; null in development mode. */
export function signInSetup() {
  try {
    const setup = JSON.parse(document.getElementById("sign-in-setup")?.textContent || "{}");
    return setup.issuer ? setup : null;
  } catch {
    return null;
  }
}

const base64url = (bytes) =>
  btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const randomText = () => base64url(crypto.getRandomValues(new Uint8Array(32)));
const challengeOf = async (verifier) =>
  base64url(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier))));
const trimmed = (url) => url.replace(/\/+$/, "");
const consoleUrl = () => location.origin + location.pathname;

async function discover(setup) {
  const url = `${trimmed(setup.issuer)}/.well-known/openid-configuration`;
  let response;
  try {
    response = await fetch(url, { credentials: "omit" });
  } catch {
    throw new Error(`The sign-in service (${setup.issuer}) could not be reached.`);
  }
  if (!response.ok) throw new Error(`The sign-in service did not describe itself (HTTP ${response.status}).`);
  const meta = await response.json();
  // A document naming another issuer (a mix-up) is not followed anywhere.
  if (trimmed(meta.issuer || "") !== trimmed(setup.issuer)) {
    throw new Error("The sign-in service names another issuer than the one the gateway trusts: not signing in.");
  }
  return meta;
}

async function tokenRequest(meta, fields) {
  let response;
  try {
    response = await fetch(meta.token_endpoint, {
      method: "POST",
      credentials: "omit",
      headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
      body: new URLSearchParams(fields),
    });
  } catch {
    const unreachable = new Error("The sign-in service could not be reached.");
    unreachable.unreachable = true;
    throw unreachable;
  }
  const answer = await response.json().catch(() => ({}));
  if (!response.ok || !answer.access_token) {
    throw new Error(`The sign-in service refused: ${answer.error_description || answer.error || `HTTP ${response.status}`}.`);
  }
  return answer;
}

/** Where to send the browser, and what to remember until it comes back. */
async function authorization(setup) {
  const meta = await discover(setup);
  const pending = { verifier: randomText(), state: randomText(), nonce: randomText(), redirectUri: consoleUrl() };
  const url = new URL(meta.authorization_endpoint);
  for (const [name, value] of Object.entries({
    response_type: "code",
    client_id: setup.clientId,
    redirect_uri: pending.redirectUri,
    scope: setup.scopes,
    state: pending.state,
    nonce: pending.nonce,
    code_challenge: await challengeOf(pending.verifier),
    code_challenge_method: "S256",
  })) {
    url.searchParams.set(name, value);
  }
  return { url, pending, meta };
}

/** The code (or the refusal) the issuer sent back, checked against what was asked. */
async function redeem(setup, meta, pending, search) {
  const params = new URLSearchParams(search);
  if (!pending || params.get("state") !== pending.state) {
    throw new Error("This sign-in answer does not belong to a sign-in started here: start again.");
  }
  if (params.get("error")) {
    throw new Error(`The sign-in service refused: ${params.get("error_description") || params.get("error")}.`);
  }
  const answer = await tokenRequest(meta, {
    grant_type: "authorization_code",
    code: params.get("code") || "",
    redirect_uri: pending.redirectUri,
    client_id: setup.clientId,
    code_verifier: pending.verifier,
  });
  if (answer.id_token) {
    const id = claimsOf(answer.id_token);
    const audiences = [].concat(id.aud);
    if (id.nonce !== pending.nonce || trimmed(id.iss || "") !== trimmed(setup.issuer) || !audiences.includes(setup.clientId)) {
      throw new Error("The sign-in service's answer is not for this sign-in: start again.");
    }
  }
  return answer;
}

/** The popup's part: hand the answer to the page that opened it, and close. True if it did. */
export function handedToOpener() {
  // A sign-in of this tab's own (a full-page redirect) left its verifier here; a popup's did not.
  if (!/[?&](code|error)=/.test(location.search) || sessionStorage.getItem(PENDING)) return false;
  let opener = null;
  try {
    opener = window.opener && window.opener.location.origin === location.origin ? window.opener : null;
  } catch {
    return false; // opened by a page of another origin: nothing to hand over
  }
  if (!opener) return false;
  opener.postMessage({ type: MESSAGE, search: location.search }, location.origin);
  window.close();
  return true;
}

/**
 * The tokens of one signed-in person, in memory. `token()` is the access token to send;
 * `onExpired(message)` hears when there is none any more (refresh refused or impossible).
 */
export class Tokens {
  constructor(setup, meta, answer, onExpired) {
    this.setup = setup;
    this.meta = meta;
    this.onExpired = onExpired;
    this.timer = null;
    this.take(answer);
  }

  take(answer) {
    if (this.ended) return; // signed out (or replaced) while a renewal was on its way
    this.access = answer.access_token;
    // A server that does not rotate refresh tokens answers without one: the one held stays.
    this.refresh = answer.refresh_token || this.refresh || null;
    this.claims = claimsOf(this.access);
    const lifetime = Number(answer.expires_in) || null;
    const expiresAt = this.claims.exp ? this.claims.exp * 1000 : Date.now() + (lifetime || 300) * 1000;
    // Renewed well before it expires (half its life, at most a minute before), so a request
    // under way never carries an expired token.
    const left = expiresAt - Date.now();
    const renewIn = Math.max(1000, left - Math.min(60_000, left / 2));
    clearTimeout(this.timer);
    this.timer = setTimeout(() => (this.refresh ? this.renew() : this.expire()), Math.min(renewIn, 2 ** 31 - 1));
  }

  token() {
    return this.access;
  }

  async renew(attempt = 0) {
    try {
      this.take(await tokenRequest(this.meta, {
        grant_type: "refresh_token",
        refresh_token: this.refresh,
        client_id: this.setup.clientId,
      }));
    } catch (error) {
      if (this.ended) return;
      if (error.unreachable && attempt < RENEWAL_RETRIES_MS.length) {
        this.timer = setTimeout(() => this.renew(attempt + 1), RENEWAL_RETRIES_MS[attempt]);
        return;
      }
      this.expire(`Your sign-in could not be renewed (${error.message.replace(/\.$/, "")}).`);
    }
  }

  expire(reason = "Your sign-in expired.") {
    // Nothing stale is kept: a refused refresh token is not tried again, nor the access token.
    clearTimeout(this.timer);
    this.access = null;
    this.refresh = null;
    this.onExpired(reason);
  }

  stop() {
    this.ended = true;
    clearTimeout(this.timer);
  }

  /** Signing out: both tokens forgotten, no renewal; nothing of the sign-in left in storage. */
  forget() {
    this.ended = true;
    clearTimeout(this.timer);
    this.access = null;
    this.refresh = null;
    sessionStorage.removeItem(PENDING);
  }
}

/** Back from the issuer (a code in the URL): the tokens, the URL cleaned; otherwise null. */
async function comeBack(setup) {
  const search = location.search;
  if (!/[?&](code|error)=/.test(search)) return null;
  const stored = sessionStorage.getItem(PENDING);
  sessionStorage.removeItem(PENDING);
  // The code is single-use and short-lived, but kept out of history, bookmarks and screenshots.
  history.replaceState(null, "", consoleUrl());
  const pending = stored ? JSON.parse(stored) : null;
  const meta = await discover(setup);
  return { meta, answer: await redeem(setup, meta, pending, search) };
}

/** Sign in again in a popup, the page and its unsaved edits staying as they are. */
export async function signInAgain(setup) {
  // Opened at once, on the click: a window opened after an await may be taken for an unasked
  // pop-up and blocked.
  const popup = window.open("about:blank", "_blank", "popup,width=520,height=680");
  if (!popup) throw new Error("The browser blocked the sign-in window: allow pop-ups for this page and try again.");
  let started;
  try {
    started = await authorization(setup);
  } catch (error) {
    popup.close();
    throw error;
  }
  const { url, pending, meta } = started;
  const search = new Promise((resolve) => {
    const listen = (event) => {
      if (event.origin !== location.origin || event.source !== popup || event.data?.type !== MESSAGE) return;
      window.removeEventListener("message", listen);
      resolve(event.data.search);
    };
    window.addEventListener("message", listen);
  });
  popup.location.assign(url.href);
  return { meta, answer: await redeem(setup, meta, pending, await search) };
}

/** The sign-in page behind an issuer: a button, or the sign-in finishing on the way back. */
export function OpenIdSignIn({ setup, onSignIn, error }) {
  const [problem, setProblem] = useState(null);
  const [busy, setBusy] = useState(/[?&](code|error)=/.test(location.search));
  useEffect(() => {
    comeBack(setup)
      .then((back) => back && onSignIn(back))
      .catch((e) => setProblem(e.message))
      .finally(() => setBusy(false));
  }, []);
  const start = async () => {
    setBusy(true);
    try {
      const { url, pending } = await authorization(setup);
      sessionStorage.setItem(PENDING, JSON.stringify(pending));
      location.assign(url.href);
    } catch (e) {
      setProblem(e.message);
      setBusy(false);
    }
  };
  const shown = problem || error;
  return html`<main class="signin">
    <h1>EHR integration settings</h1>
    <p>Sign in with your organisation's account (${new URL(setup.issuer).host}).</p>
    ${shown && html`<p class="error" role="alert">${shown}</p>`}
    <button type="button" onClick=${start} disabled=${busy}>${busy ? "Signing in…" : "Sign in"}</button>
  </main>`;
}

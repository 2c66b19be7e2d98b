// Signing out: the page forgets its tokens (the access token and, behind an issuer, the refresh
// token), closes its live connection and goes back to the sign-in page. Unsaved edits are not
// dropped silently: the page first says which sections hold some and asks to confirm.
import { html } from "htm/preact";
import { useEffect, useRef, useState } from "preact/hooks";

/** The header's Sign out button; `unsaved()` names the sections with unsaved edits. */
export function SignOut({ unsaved, onSignOut }) {
  const [asking, setAsking] = useState(null); // the sections with unsaved edits, when warned
  const confirm = useRef(null);
  useEffect(() => confirm.current?.focus(), [asking]);
  const start = () => {
    const sections = unsaved();
    if (sections.length) setAsking(sections);
    else onSignOut();
  };
  return html`<div class="sign-out">
    <button type="button" class="quiet" onClick=${start} aria-expanded=${asking ? "true" : undefined}
      aria-controls=${asking ? "sign-out-warning" : undefined}>Sign out</button>
    ${asking &&
    html`<section id="sign-out-warning" class="sign-out-warning" aria-labelledby="sign-out-title">
      <h2 id="sign-out-title">Sign out with unsaved edits?</h2>
      <p role="alert">Unsaved edits in ${asking.join(", ")} will be lost when you sign out.</p>
      <button type="button" ref=${confirm} onClick=${onSignOut}>Sign out and discard edits</button>
      <button type="button" class="quiet" onClick=${() => setAsking(null)}>Stay signed in</button>
    </section>`}
  </div>`;
}

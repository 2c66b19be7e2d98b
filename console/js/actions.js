// Integration actions, each beside the section it belongs to: the external gateway's id and
// connection test, the Epic OAuth signing key and token test, the JKU and a pasted JWT, and the
// patient restriction tried for an age. What a role may not do is shown disabled, saying which
// permission it needs and who has it (console/schema.json's roles and each operation's
// "Requires:"), instead of failing on click. Outcomes are in words; no secret or token is shown.
import { html } from "htm/preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { EpicOAuthActions, JkuActions } from "./actions-epic.js";
import { ActionButton, Copyable, Outcome, change, reasonFor, refusals, useAction } from "./actions-kit.js";

export const REGENERATE_GATEWAY = `mutation RegenerateExternalGatewayId($tenantId: ID!, $expectedVersion: Int) {
  regenerateExternalGatewayId(tenantId: $tenantId, expectedVersion: $expectedVersion) {
    __typename
    ... on SettingsSaved { settings { id version } }
    ... on ValidationFailed { errors { path code message } }
    ... on VersionConflict { currentVersion }
  }
}`;

export const TEST_CONNECTION = `mutation TestConnection($tenantId: ID!) {
  testExternalGatewayConnection(tenantId: $tenantId) {
    __typename
    ... on GatewayConnectionTest { url reachable ok fhirVersion softwareName softwareVersion failure { code message } }
    ... on ValidationFailed { errors { path code message } }
  }
}`;

export const EVALUATE_RESTRICTION = `query EvaluateRestriction($tenantId: ID!, $age: Int!) {
  evaluatePatientRestriction(tenantId: $tenantId, age: $age) {
    __typename
    ... on RestrictionEvaluated { restricted expression }
    ... on ValidationFailed { errors { path code message } }
  }
}`;

function connectionInWords(result) {
  if (result.__typename === "ValidationFailed") return { ok: false, text: `Not tested: ${refusals(result)}` };
  const called = result.url ? ` (called ${result.url})` : "";
  if (result.ok) {
    const software = [result.softwareName, result.softwareVersion].filter(Boolean).join(" ");
    const fhir = result.fhirVersion ? ` FHIR ${result.fhirVersion}` : "";
    return {
      ok: true,
      text: `Connected: the EHR answered with a${fhir} CapabilityStatement${software ? ` from ${software}` : ""}${called}.`,
    };
  }
  const why = result.failure?.message ?? "it did not answer with a CapabilityStatement";
  return { ok: false, text: `Not connected: ${why.replace(/\.$/, "")}${called}.` };
}

function GatewayActions({ forms, section, api, tenant, version, may, onChanged }) {
  const { externalGatewayId: gatewayId, basePathUrl } = section.stored;
  const regenerate = useAction();
  const test = useAction();
  const [confirming, setConfirming] = useState(false);
  const keep = useRef(null);
  const asked = useRef(false);
  // The keyboard stays where the person is: on the safe choice when asked, then back on the
  // button that asked (never on the page's first render).
  useEffect(() => {
    if (confirming) keep.current?.focus();
    else if (asked.current) document.getElementById("a-regenerate")?.focus();
    asked.current ||= confirming;
  }, [confirming]);
  const rotateWhy = reasonFor(forms, may, "regenerateExternalGatewayId");
  const testWhy = reasonFor(forms, may, "testExternalGatewayConnection");
  return html`<div class="section-actions">
    <div class="action-group" role="group" aria-labelledby="a-gateway-id">
      <h3 id="a-gateway-id">External gateway id and base path URL</h3>
      ${gatewayId
        ? html`<dl class="identity">
            <${Copyable} id="a-gateway-id-value" label="external gateway id" value=${gatewayId} />
            <${Copyable} id="a-base-path-url" label="base path URL" value=${basePathUrl} />
          </dl>
          ${confirming
            ? html`<p class="note">The old id stops resolving at once: Epic must be given the new base path URL.</p>
                <div class="actions">
                  <button type="button" onClick=${() => {
                    setConfirming(false);
                    regenerate.run(() => change(api, REGENERATE_GATEWAY, { tenantId: tenant, expectedVersion: version }, onChanged));
                  }}>Yes, regenerate the id</button>
                  <button type="button" class="quiet" ref=${keep} onClick=${() => setConfirming(false)}>Keep the current id</button>
                </div>`
            : html`<div class="actions">
                <${ActionButton} id="a-regenerate" quiet reason=${rotateWhy} busy=${regenerate.busy}
                  onClick=${() => setConfirming(true)}>Regenerate the external gateway id</${ActionButton}>
              </div>`}`
        : html`<p class="help">None yet: saving this section creates the external gateway id and its base path URL.
            ${reasonFor(forms, may, "createExternalGateway") ?? ""}</p>`}
      <${Outcome} outcome=${regenerate.outcome} />
    </div>
    <div class="action-group" role="group" aria-labelledby="a-connection">
      <h3 id="a-connection">Connection test</h3>
      <p class="help">Calls the EHR's FHIR metadata endpoint (the API base URL and the FHIR URL prefix). Stores nothing.</p>
      <div class="actions">
        <${ActionButton} id="a-test-connection" reason=${testWhy} busy=${test.busy}
          onClick=${() => test.run(async () => {
            const data = await api.mutate(TEST_CONNECTION, { tenantId: tenant });
            return connectionInWords(data.testExternalGatewayConnection);
          }, "Calling the EHR…")}>Test the connection</${ActionButton}>
      </div>
      <${Outcome} outcome=${test.outcome} />
    </div>
  </div>`;
}

function RestrictionActions({ forms, section, api, tenant, may }) {
  const [age, setAge] = useState("");
  const [error, setError] = useState(null);
  const evaluate = useAction();
  const why = reasonFor(forms, may, "evaluatePatientRestriction");
  const submit = (event) => {
    event.preventDefault();
    const text = age.trim();
    if (!/^\d{1,3}$/.test(text)) {
      setError("Type the patient's age in whole years, e.g. 15.");
      evaluate.setOutcome(null);
      return;
    }
    setError(null);
    evaluate.run(async () => {
      const data = await api.query(EVALUATE_RESTRICTION, { tenantId: tenant, age: Number(text) });
      const result = data.evaluatePatientRestriction;
      if (result.__typename === "ValidationFailed") {
        setError(refusals(result));
        return null;
      }
      const rule = result.expression ? ` by the saved expression ${result.expression}` : ": no expression is saved";
      return result.restricted
        ? { ok: false, text: `Refused: a patient aged ${text} is restricted${rule}.` }
        : { ok: true, text: `Allowed: a patient aged ${text} is not restricted${rule}.` };
    }, "Evaluating…");
  };
  return html`<div class="section-actions">
    <form class="action-group" aria-labelledby="a-restriction" onSubmit=${submit} novalidate>
      <h3 id="a-restriction">Try the expression</h3>
      <div class=${`field${error ? " invalid" : ""}`}>
        <label for="a-age">Patient age</label>
        <input id="a-age" type="text" inputmode="numeric" value=${age}
          aria-invalid=${error ? "true" : undefined}
          aria-describedby=${[error && "a-age-error", "a-age-help"].filter(Boolean).join(" ")}
          onInput=${(e) => setAge(e.currentTarget.value)} />
        ${error && html`<p id="a-age-error" class="error">${error}</p>`}
        <p id="a-age-help" class="help">Evaluates the saved expression${section.stored.expression ? "" : " (none is saved yet)"} for a patient of this age, in whole years.</p>
      </div>
      <div class="actions">
        <button type="submit" disabled=${Boolean(why) || evaluate.busy}
          aria-describedby=${why ? "a-evaluate-why" : undefined}>Evaluate for this age</button>
        ${why && html`<span id="a-evaluate-why" class="why-not">${why}</span>`}
      </div>
      <${Outcome} outcome=${evaluate.outcome} />
    </form>
  </div>`;
}

/** The actions that belong beside `section`, if any. */
export function SectionActions(props) {
  const { section, settings } = props;
  const epic = settings?.provider === "EPIC";
  if (section.key === "externalGateway") return html`<${GatewayActions} ...${props} version=${settings?.version} />`;
  if (section.key === "patientRestriction") return html`<${RestrictionActions} ...${props} />`;
  if (section.key === "oauth" && epic) return html`<${EpicOAuthActions} ...${props} version=${settings.version} />`;
  if (section.key === "ehr" && epic) return html`<${JkuActions} ...${props} version=${settings.version} />`;
  return null;
}


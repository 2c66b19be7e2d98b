// Settings named as a person knows them: the spec's name, from a settingsDiff path
// ("providers.EPIC.ehr.context") or a readiness path (["ehr", "context"]).

/** The label of the setting at a settingsDiff path, else the path itself. */
export function labelOfPath(forms, path) {
  const parts = path.split(".");
  if (parts[0] === "provider") return "EHR provider";
  let provider = null;
  let rest = parts;
  if (parts[0] === "providers" && parts.length >= 3) {
    provider = parts[1];
    rest = parts.slice(2);
  }
  const [field, name] = rest;
  let settings = [];
  if (field === "externalGateway") settings = forms.externalGateway.settings;
  else if (field === "patientRestriction") settings = forms.patientRestriction.settings;
  else if (provider && forms.providers[provider]) {
    settings = forms.providers[provider].sections.find((s) => s.field === field)?.settings || [];
  }
  const found = settings.find((s) => s.name === name);
  if (!found) return path;
  const ehr = provider && forms.providers[provider] ? ` (${forms.providers[provider].name})` : "";
  return provider && provider !== forms.active ? `${found.label}${ehr}` : found.label;
}

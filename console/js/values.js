// Between a setting's stored value, what its input holds, and what a save sends.

/** What the input shows for a stored value. */
export function toForm(setting, value) {
  switch (setting.kind) {
    case "switch":
      return Boolean(value ?? setting.default);
    case "secret":
      return "";
    case "list":
      return (value ?? []).join("\n");
    case "mapping":
      return (value ?? []).map((entry) => Object.fromEntries(setting.keys.map((k) => [k, entry[k] ?? ""])));
    case "number":
      return value === null || value === undefined ? "" : String(value);
    default:
      return value ?? "";
  }
}

/** What a save sends for an input's content: empty means null, back to the default. */
export function toInput(setting, raw) {
  switch (setting.kind) {
    case "switch":
      return Boolean(raw);
    case "number": {
      const text = String(raw).trim();
      if (text === "") return null;
      return /^-?\d+$/.test(text) ? Number(text) : text;
    }
    case "list":
      return String(raw)
        .split("\n")
        .map((line) => line.trim())
        .filter(Boolean);
    case "mapping":
      return raw.filter((entry) => setting.keys.some((k) => String(entry[k]).trim() !== ""));
    default: {
      const text = String(raw);
      return text.trim() === "" ? null : text;
    }
  }
}

export function same(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** A stored value in words, for "what changed meanwhile". */
export function inWords(value) {
  if (value === null || value === undefined) return "not set";
  if (typeof value === "boolean") return value ? "on" : "off";
  if (typeof value === "object" && "isSet" in value) return value.isSet ? "set" : "not set";
  if (Array.isArray(value)) {
    if (!value.length) return "empty";
    return value.map((v) => (typeof v === "object" ? `${v.name} = ${v.value}` : String(v))).join(", ");
  }
  return String(value);
}

// GraphiQL on this gateway. The schema is fetched with the headers of the Headers pane, so it is
// fetched again once they change (a pasted token): GraphiQL introspects whenever its fetcher
// changes, and a new fetcher is made a moment after the last edit of the headers.
(function () {
  "use strict";
  const location = new URL(window.location.href);
  location.search = "";
  location.hash = "";
  const url = location.toString();
  const subscriptionUrl = url.replace(/^http/, "ws");
  const SETTLE_MS = 400;

  const WELCOME = [
    "# The EHR configuration gateway.",
    "#",
    '# Paste {"Authorization": "Bearer <token>"} into the Headers pane below',
    "# (ehr-gateway token --tenant acme --role integrator prints one); the schema",
    "# and the Docs pane load as soon as it is there.",
    "",
    'query Settings {',
    '  integrationSettings(tenantId: "acme") { version provider }',
    "}",
    "",
  ].join("\n");

  // Nothing GraphiQL keeps may outlive the tab: its history stores each run's headers (the
  // bearer token) whatever shouldPersistHeaders says, and its editors and tabs keep what was
  // typed (a password in a mutation). It keeps them here, in this page's memory, instead.
  const memory = new Map();
  const storage = {
    getItem: (key) => (memory.has(key) ? memory.get(key) : null),
    setItem: (key, value) => {
      memory.set(key, String(value));
    },
    removeItem: (key) => {
      memory.delete(key);
    },
    clear: () => {
      memory.clear();
    },
    get length() {
      return memory.size;
    },
  };
  // What earlier versions of this page left in the browser goes now.
  try {
    for (const key of Object.keys(window.localStorage)) {
      if (key.startsWith("graphiql:")) window.localStorage.removeItem(key);
    }
  } catch (_blocked) {
    // A browser that refuses this page storage kept nothing in it either.
  }

  function Gateway() {
    const [headers, setHeaders] = React.useState("");
    const timer = React.useRef(undefined);
    const fetcher = React.useMemo(
      () => GraphiQL.createFetcher({ url, subscriptionUrl }),
      // eslint-disable-next-line react-hooks/exhaustive-deps
      [headers],
    );
    function onEditHeaders(text) {
      window.clearTimeout(timer.current);
      timer.current = window.setTimeout(() => setHeaders(text), SETTLE_MS);
    }
    return React.createElement(GraphiQL, {
      fetcher,
      defaultQuery: WELCOME,
      defaultEditorToolsVisibility: true,
      isHeadersEditorEnabled: true,
      // A bearer token kept in localStorage outlives the tab; pasting it again is the price.
      shouldPersistHeaders: false,
      storage,
      inputValueDeprecation: true,
      onEditHeaders,
    });
  }

  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(Gateway),
  );
})();

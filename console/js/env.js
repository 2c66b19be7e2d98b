// urql's ES modules test process.env.NODE_ENV for their development warnings, as bundlers
// replace it; without a bundler the browser has no `process`. Imported first by main.js, so it
// runs before any library module.
globalThis.process ??= { env: { NODE_ENV: "production" } };

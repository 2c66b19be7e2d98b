// graphql-schema-linter, as a CI job runs it, with the rules given, on the schema file given;
// prints its findings (rule and message of each).
// Usage: node schema_lint.mjs SCHEMA_FILE RULE[,RULE...]
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";

const [schemaFile, rules] = process.argv.slice(2);
const require = createRequire(import.meta.url);
const linter = path.join(
  path.dirname(require.resolve("graphql-schema-linter/package.json")),
  "lib",
  "cli.js",
);
const run = spawnSync(
  process.execPath,
  [linter, "--rules", rules, "--format", "json", schemaFile],
  { encoding: "utf8" },
);
// Exit status 1 means findings, which are the result; anything else is the linter failing.
if (run.status !== 0 && run.status !== 1) {
  console.error(run.stdout, run.stderr);
  process.exit(run.status ?? 2);
}
const report = JSON.parse(run.stdout);
console.log(
  JSON.stringify({
    findings: report.errors.map(({ rule, message }) => ({ rule, message })),
  }),
);

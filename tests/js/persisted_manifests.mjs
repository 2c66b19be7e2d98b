// Generates the two trusted-document manifests a frontend build produces from the same
// operations: GraphQL Code Generator's client preset with persisted documents
// (persisted-documents.json) and Apollo's persisted-query-manifest.json.
// Usage: node persisted_manifests.mjs SCHEMA OPERATIONS_GLOB OUT_DIR
import { generate } from "@graphql-codegen/cli";
import { generatePersistedQueryManifest } from "@apollo/generate-persisted-query-manifest";
import { writeFile } from "node:fs/promises";
import path from "node:path";

const [schema, documents, outDir] = process.argv.slice(2);

await generate(
  {
    schema,
    documents: [documents],
    silent: true,
    generates: {
      [outDir + path.sep]: {
        preset: "client",
        presetConfig: { persistedDocuments: true },
      },
    },
  },
  true,
);
const codegen = path.join(outDir, "persisted-documents.json");

const manifest = await generatePersistedQueryManifest({ documents: [documents] }, undefined);
const apollo = path.join(outDir, "persisted-query-manifest.json");
await writeFile(apollo, JSON.stringify(manifest, null, 2));

console.log(JSON.stringify({ codegen, apollo }));

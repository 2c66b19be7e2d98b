// The Apollo Server target of bench/reads.py: this project's own schema.graphql served by
// @apollo/server (one Node process, no cache), with resolvers that return the data of the
// gateway's answer to the read, so both do the same GraphQL work for the same bytes.
//
//   node bench/js/apollo_reads.mjs --port N --response FILE
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { ApolloServer } from "@apollo/server";
import { startStandaloneServer } from "@apollo/server/standalone";
import { buildSchema, isAbstractType } from "graphql";

const { values } = parseArgs({
  options: { port: { type: "string" }, response: { type: "string" } },
});
if (!values.port || !values.response) {
  console.error("usage: node bench/js/apollo_reads.mjs --port N --response FILE");
  process.exit(2);
}
const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const schema = buildSchema(readFileSync(join(root, "schema.graphql"), "utf8"));
const answer = JSON.parse(readFileSync(values.response, "utf8")).data;

// Every union and interface member in the answer carries its __typename (the query asks for
// it): resolve the abstract types by it, as the gateway resolves its own.
for (const type of Object.values(schema.getTypeMap())) {
  if (isAbstractType(type)) {
    type.resolveType = (value) => value.__typename;
  }
}
// Root fields answer the stored data; every field beneath uses graphql-js's default resolver
// (a property read), as plain data fields in any Apollo server do.
const queryFields = schema.getQueryType().getFields();
for (const [name, field] of Object.entries(queryFields)) {
  if (name in answer) {
    field.resolve = () => answer[name];
  }
}

const server = new ApolloServer({ schema, introspection: false });
const { url } = await startStandaloneServer(server, {
  listen: { port: Number(values.port), host: "127.0.0.1" },
});
console.log(`apollo_reads listening at ${url}`);

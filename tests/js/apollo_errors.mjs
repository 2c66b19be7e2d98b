// Apollo Client 4 (HttpLink, as a browser app sets it up) runs one query against a gateway and
// reports how the failure reached the application.
// GATEWAY_URL: the gateway's base URL; GATEWAY_TOKEN: the bearer token sent (may be bad).
// argv[2]: the query document; argv[3]: its variables as JSON (optional).
// Prints one JSON document: {errorType, graphQLErrors: [{message, code}], data}.
import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { CombinedGraphQLErrors, ServerError } from "@apollo/client/errors";

const client = new ApolloClient({
  link: new HttpLink({
    uri: `${process.env.GATEWAY_URL}/graphql`,
    headers: { authorization: `Bearer ${process.env.GATEWAY_TOKEN}` },
  }),
  cache: new InMemoryCache(),
});

const query = gql(process.argv[2]);
const variables = process.argv[3] ? JSON.parse(process.argv[3]) : {};
const { data, error } = await client.query({ query, variables, errorPolicy: "all" });

function errorType(error) {
  if (error === undefined) return null;
  if (CombinedGraphQLErrors.is(error)) return "CombinedGraphQLErrors";
  if (ServerError.is(error)) return `ServerError (status ${error.statusCode})`;
  return error.constructor.name;
}

console.log(
  JSON.stringify({
    errorType: errorType(error),
    graphQLErrors: CombinedGraphQLErrors.is(error)
      ? error.errors.map((e) => ({ message: e.message, code: e.extensions?.code ?? null }))
      : [],
    data: data ?? null,
  }),
);

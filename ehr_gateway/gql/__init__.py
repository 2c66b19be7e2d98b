"""How it is exposed: the GraphQL schema, its types by feature, limits and error policy. Served by
the server package."""

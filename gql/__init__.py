"""How it is exposed: the GraphQL schema, the Starlette app, configuration and the command."""

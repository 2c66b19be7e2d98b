"""The EHR configuration gateway: one distribution namespace for its layers.

From the top: ``server`` (HTTP and WebSocket serving, the composition root), ``gql`` (the GraphQL
schema), ``resolvers`` (what the schema can do), ``runtime`` (what a gateway process keeps
running: identity, access, outbound calls, caches, fan-out), ``storage`` (MongoDB) and ``ehr``
(what the settings are). A layer imports only from the layers below it."""

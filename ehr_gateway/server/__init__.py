"""Serving: the Starlette application, its endpoints and lifespan, the request gate, WebSocket
limits, metrics, logs, configuration and the ehr-gateway command."""

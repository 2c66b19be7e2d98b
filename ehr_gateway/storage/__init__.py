"""Where the settings live: MongoDB documents and history, secrets at rest, the embedded server."""

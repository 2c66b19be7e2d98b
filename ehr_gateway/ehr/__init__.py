"""What the settings are: models, rules, readiness, restriction expressions.

Imports nothing else of this project."""

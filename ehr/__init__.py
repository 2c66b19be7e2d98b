"""What the settings are: models, rules, readiness, restriction expressions. Imports nothing of ours."""

"""Fixtures the attack tests share with the suite: a gateway behind an OpenID issuer (not in
development mode), from the field-suggestion tests."""

from tests.gql.test_field_suggestions import issuer, production

__all__ = ["issuer", "production"]

"""Keys too weak to be trusted, for tests that they are not."""

from __future__ import annotations

from typing import Any

# A 512-bit RSA key (made with `openssl genrsa 512`; the cryptography package makes none under
# 1024 bits): the size RSA-155 was factored at in 1999, and that rented machines factor today in
# hours. Private members included, so a test can sign with it as whoever factored it would.
WEAK_RSA_KEY: dict[str, Any] = {
    "kty": "RSA",
    "kid": "weak",
    "n": "pfgasGhtZe_FPh7178QAS03kLCehvC9GuCivEjqr7lmVA7y5FWxZevdLKgil5GZtBLrYIKKwBva9U2kj98nutw",
    "e": "AQAB",
    "d": "a5qR4zGxS9fKb94u4YaYEjqr5pzDVXjpRtjJuO3lLqBGDIIH7trrupVgrtBZerZrN5X0cf68UoI50FSVxupZAQ",
    "p": "3Afli-U5tmsh7wyXQI491-_obH5uSBhmHp9pB1s-tcE",
    "q": "wRnFoRQtORka7aPzH4yZvkq8-LCiJHgWSZdkPuiT8nc",
    "dp": "1jBltzI0ZSyTAva5wmD1OODU29CToGEH_-VkQ4ICYME",
    "dq": "hlrHLidau9Ki8NvVCouKYWOhDivf9R306-lBH6A1aEs",
    "qi": "RsQ-pwYXDHl7druOjIvXtFh3mwVnHGbSiKWS2VMrqKA",
}
# What a key set publishes of it (read by joserfc only with a warning, so given as members).
WEAK_RSA_PUBLIC_KEY = {name: WEAK_RSA_KEY[name] for name in ("kty", "kid", "n", "e")}

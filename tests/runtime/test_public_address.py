"""Which addresses an outbound call may connect to: public ones, judged also by every IPv4 address
an IPv6 address leads to. The gateway-level tests (tests/gql/test_outbound_addresses.py) show the
refusals through the API; these show that public addresses in each form still pass."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ehr_gateway.runtime.outbound import public_address

UNTIMED = settings(deadline=None)

# 8.8.8.8 (a public IPv4 address) in each IPv6 form that leads to it, and plain public IPv6.
PUBLIC = [
    "8.8.8.8",
    "2606:4700:4700::1111",
    "::ffff:8.8.8.8",  # IPv4-mapped
    "::ffff:0:808:808",  # IPv4-translated (RFC 2765)
    "64:ff9b::808:808",  # NAT64 well-known prefix
    "2002:808:808::1",  # 6to4
    "2600::5efe:808:808",  # ISATAP
]
NOT_PUBLIC = [
    "127.0.0.1",
    "10.0.0.1",
    "::1",
    "fe80::1",
    "fc00::1",
    "fec0::1",  # site-local: the stdlib calls it global
    "ff0e::1",  # multicast: the stdlib calls it global
    "224.0.0.1",
    "::ffff:0:7f00:1",
    "2600::5efe:a00:1",
    "2600::200:5efe:a00:1",
    "64:ff9b:1::808:808",  # local-use NAT64, whatever it embeds
]


@pytest.mark.parametrize("address", PUBLIC)
def test_a_public_address_in_any_form_is_public(address: str) -> None:
    assert public_address(address)


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_a_private_local_or_multicast_address_in_any_form_is_not(address: str) -> None:
    assert not public_address(address)


@UNTIMED
@given(st.ip_addresses(v=4))
def test_an_ipv4_address_is_judged_alike_in_each_ipv6_form_that_leads_to_it(
    v4: ipaddress.IPv4Address,
) -> None:
    forms = [
        ipaddress.IPv6Address(f"::ffff:{v4}"),
        ipaddress.IPv6Address(f"::ffff:0:{v4}"),
        ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | int(v4)),
        ipaddress.IPv6Address(int(ipaddress.IPv6Address("2600::5efe:0:0")) | int(v4)),
    ]

    assert [public_address(str(form)) for form in forms] == [public_address(str(v4))] * 4

"""Shared keys for the authority tests: published test keys from fixed primes, and a cache.

These primes are test material only, published here on purpose; never use them for anything.
"""

from __future__ import annotations

from collections.abc import Callable
from math import lcm

import pytest

from authority.rsa import RsaPrivateKey, generate

CA_1024_E3 = (
    0xF95730BBFC1B3828406360DB696267BCA2C3A6F91B808457493833F603C67786F1F77B21DAE723C02640B370DB8123CABB9F93C6BF8EF529003F7431EF23CF87,
    0xF545EFCD38F86FF865D4151A0B21D1FFEE883D4ACE1700896DBC8605026DEAA2898759621E95A7D1B9CE2456D989419CDB8C81DA88D4E99FA1464C2739E9AABB,
    3,
)
APP_1024_E65537 = (
    0xF62D7300B933C7F841F35D185A6BEE3C91F2AE6E7D9A2B466711AD3C5D14EE7103EBE9C42F011B376D778908453E8A89AECB28088DA03C55F24DFB55536CCB83,
    0xF29ADA8322793C61DEA19EEB659352D432087E4459301CDFA7F76A730C22DFED16CB1C70D30475055D44341102BAFDA341397325867FB80BB3C1CA19C7A084D7,
    65537,
)
CA_1984_E3 = (
    0xEDAF68491587FDB3F339A3C46D3120294E292D5C745D36F5242C750C27DA2FEAD653E7E5E5EA94EEA233E6078792E853023EDA78C944833C01CB7191BF330FF56A84A09FBA3833307A367A2DA8A59A3F5BDFE634CE19F3E0E7C7D7535D480FA331EAFC806452763D41BD120A7BD93CA87F6B25C0A515C9C076D2ADB1,
    0xED22264F9D5C4C5BCD238DA646C104AA8FCEDB2F2B30A8880D184993F18C2B9420EF1366A4F7B367B6EED798FC4D6C469F6DB8D058E50FF81157F6F505453C38F2DEBC19AD4FEB1CA604635C9AB3E500AC3D76768E392C895E57E3E5525303F1C31792B8CE337BC5E520A06F8A95EC326AC874FB054EF9C698815AF9,
    3,
)


PUBLISHED = {p * q: (p, q, e) for p, q, e in (CA_1024_E3, APP_1024_E65537, CA_1984_E3)}


def _textbook_sign(key: RsaPrivateKey, x: int) -> int:
    p, q, e = PUBLISHED[key.public.n]
    d = pow(e, -1, lcm(p - 1, q - 1))
    return pow(x, d, p * q)


@pytest.fixture(scope="session")
def textbook_sign() -> Callable[[RsaPrivateKey, int], int]:
    """x^d mod n with Python's pow for a published test key: an independent reference."""
    return _textbook_sign


@pytest.fixture(scope="session")
def published_primes() -> dict[int, tuple[int, int, int]]:
    """The published test keys' (p, q, e) by modulus."""
    return PUBLISHED


@pytest.fixture(scope="session")
def ca_key() -> RsaPrivateKey:
    """The published 1024-bit test authority key, e = 3."""
    return RsaPrivateKey(*CA_1024_E3)


@pytest.fixture(scope="session")
def app_key() -> RsaPrivateKey:
    """The published 1024-bit test APP key, e = 65537."""
    return RsaPrivateKey(*APP_1024_E65537)


@pytest.fixture(scope="session")
def big_ca_key() -> RsaPrivateKey:
    """The published 1984-bit test authority key, e = 3."""
    return RsaPrivateKey(*CA_1984_E3)


@pytest.fixture(scope="session")
def key_cache() -> Callable[[int, int], RsaPrivateKey]:
    """Generated keys, one per (bits, exponent) per session, so property tests stay fast."""
    cache: dict[tuple[int, int], RsaPrivateKey] = {}

    def get(bits: int, exponent: int) -> RsaPrivateKey:
        if (bits, exponent) not in cache:
            cache[bits, exponent] = generate(bits, exponent)
        return cache[bits, exponent]

    return get

"""Raw RSA and ISO/IEC 9796-2 scheme 1 (PROTOCOL.md §5)."""

from __future__ import annotations

import math
import pickle
import secrets
from collections.abc import Callable

import gmpy2
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa as crypto_rsa

from authority import iso9796
from authority.errors import InvalidKeyError, RecoveryError, RecoveryReason, SigningFaultError
from authority.rsa import (
    RsaPrivateKey,
    RsaPublicKey,
    forget_prepared,
    from_cryptography,
    generate,
)

Sign = Callable[[RsaPrivateKey, int], int]


def _secret_texts(primes: tuple[int, int, int]) -> list[str]:
    p, q, _ = primes
    return [str(p)[:20], str(q)[:20], f"{p:x}"[:20], f"{q:x}"[:20]]


def test_private_op_equals_textbook_rsa(
    ca_key: RsaPrivateKey, app_key: RsaPrivateKey, textbook_sign: Sign
) -> None:
    for key in (ca_key, app_key):
        for _ in range(5):
            x = secrets.randbelow(key.public.n)
            s = key.private_op(x)
            assert s == textbook_sign(key, x)
            assert key.public.public_op(s) == x


def test_private_op_refuses_input_not_below_modulus(ca_key: RsaPrivateKey) -> None:
    with pytest.raises(ValueError, match="below the modulus"):
        ca_key.private_op(ca_key.public.n)


def test_fault_is_caught_before_the_result_leaves(
    published_primes: dict[int, tuple[int, int, int]],
) -> None:
    key = RsaPrivateKey(*next(iter(published_primes.values())))
    key._dp = key._dp + 1  # a glitched CRT half
    with pytest.raises(SigningFaultError) as info:
        key.private_op(12345)
    for text in _secret_texts(published_primes[key.public.n]):
        assert text not in str(info.value)


def test_repr_and_errors_hold_no_private_material(
    ca_key: RsaPrivateKey, published_primes: dict[int, tuple[int, int, int]]
) -> None:
    assert repr(ca_key) == "RsaPrivateKey(bits=1024, e=3)"
    with pytest.raises(TypeError):
        pickle.dumps(ca_key)
    p, q, _ = published_primes[ca_key.public.n]
    with pytest.raises(InvalidKeyError) as info:
        RsaPrivateKey(p, q + 2, 3)
    for text in _secret_texts((p, q, 3)):
        assert text not in str(info.value)


@pytest.mark.parametrize("bits", [1016, 1025, 1992, 2048])
def test_generate_refuses_sizes_outside_the_protocol(bits: int) -> None:
    with pytest.raises(InvalidKeyError, match="1024 to 1984"):
        generate(bits, 3)


def test_generate_refuses_other_exponents() -> None:
    with pytest.raises(InvalidKeyError, match="3 or 65537"):
        generate(1024, 17)


def test_generate_gives_the_exact_size_and_exponent(
    key_cache: Callable[[int, int], RsaPrivateKey],
) -> None:
    key = key_cache(1032, 65537)
    assert (key.public.bits, key.public.size, key.public.e) == (1032, 129, 65537)
    assert key.public.exponent_bytes() == b"\x01\x00\x01"


def test_public_key_checks() -> None:
    with pytest.raises(InvalidKeyError):
        RsaPublicKey((1 << 1023) + 2, 3)  # even
    with pytest.raises(InvalidKeyError):
        RsaPublicKey((1 << 1022) + 1, 3)  # 1023 bits
    assert RsaPublicKey((1 << 1023) + 1, 3).exponent_bytes() == b"\x03"


def test_cryptography_round_trip(ca_key: RsaPrivateKey) -> None:
    back = from_cryptography(ca_key.to_cryptography())
    assert back.public == ca_key.public
    assert back.private_op(99) == ca_key.private_op(99)


def test_from_cryptography_refuses_a_2048_bit_key() -> None:
    big = crypto_rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(InvalidKeyError):
        from_cryptography(big)


def _recovered(size: int, fill: int = 0x11) -> bytes:
    return bytes([iso9796.HEADER]) + bytes([fill]) * (size - 2) + bytes([iso9796.TRAILER])


def test_sign_recover_round_trip(ca_key: RsaPrivateKey, textbook_sign: Sign) -> None:
    x = _recovered(ca_key.public.size)
    s = iso9796.sign(ca_key, x)
    assert s == textbook_sign(ca_key, int.from_bytes(x, "big")).to_bytes(128, "big")
    assert iso9796.recover(ca_key.public, s) == x


@pytest.mark.parametrize(
    "data",
    [
        b"\x6a" + b"\x00" * 126 + b"\xbb",  # bad trailer
        b"\x6b" + b"\x00" * 126 + b"\xbc",  # bad header
        b"\x6a" + b"\x00" * 125 + b"\xbc",  # short
    ],
)
def test_sign_refuses_malformed_recovered_data(ca_key: RsaPrivateKey, data: bytes) -> None:
    with pytest.raises(ValueError):
        iso9796.sign(ca_key, data)


def test_recover_reasons(ca_key: RsaPrivateKey, textbook_sign: Sign) -> None:
    pub = ca_key.public

    def reason(sig: bytes) -> RecoveryReason:
        with pytest.raises(RecoveryError) as info:
            iso9796.recover(pub, sig)
        return info.value.reason

    assert reason(b"\x00" * 127) is RecoveryReason.BAD_LENGTH
    assert reason(pub.modulus_bytes()) is RecoveryReason.OUT_OF_RANGE
    bad_header = b"\x6b" + b"\x00" * 126 + b"\xbc"
    bad_trailer = b"\x6a" + b"\x00" * 126 + b"\xbd"
    for data, want in ((bad_header, "BAD_HEADER"), (bad_trailer, "BAD_TRAILER")):
        sig = textbook_sign(ca_key, int.from_bytes(data, "big")).to_bytes(128, "big")
        assert reason(sig) is RecoveryReason[want]


def test_recover_refuses_a_good_signature_plus_n(ca_key: RsaPrivateKey) -> None:
    """S + n is S modulo n: it must be refused as out of range, never reduced and
    accepted (PROTOCOL.md §5). The first fill whose S + n still fits N bytes is taken."""
    pub = ca_key.public
    for fill in range(256):
        x = _recovered(pub.size, fill)
        s = int.from_bytes(iso9796.sign(ca_key, x), "big") + pub.n
        if s < 1 << (8 * pub.size):
            break
    else:
        pytest.fail("no signature S with S + n below 2^(8N)")
    with pytest.raises(RecoveryError) as info:
        iso9796.recover(pub, s.to_bytes(pub.size, "big"))
    assert info.value.reason is RecoveryReason.OUT_OF_RANGE
    assert iso9796.recover(pub, (s - pub.n).to_bytes(pub.size, "big")) == x


def _prime_near(start: int, residue_mod_3: int) -> int:
    """The first prime after `start` that is `residue_mod_3` modulo 3."""
    p = int(gmpy2.next_prime(start))
    while p % 3 != residue_mod_3:
        p = int(gmpy2.next_prime(p))
    return p


def test_equal_prime_factors_are_refused() -> None:
    """PROTOCOL.md §5: n is the product of two distinct primes; p = q (n a square, whose
    root gives the key away) is an InvalidKeyError, not a crash in the CRT set-up."""
    p = _prime_near(3 << 510, 2)  # p*p: 1024 bits, and e = 3 invertible mod p - 1
    assert (p * p).bit_length() == 1024
    with pytest.raises(InvalidKeyError, match="invalid prime factors"):
        RsaPrivateKey(p, p, 3)


def test_exponent_not_invertible_for_the_primes_is_refused() -> None:
    """PROTOCOL.md §5: e = 3 needs gcd(e, lcm(p-1, q-1)) = 1; with p = 1 (mod 3) there is
    no d, and the key is refused as an InvalidKeyError (not a ZeroDivisionError)."""
    p = _prime_near(7 << 509, 1)
    q = _prime_near(3 << 510, 2)
    assert (p * q).bit_length() == 1024
    with pytest.raises(InvalidKeyError, match="not invertible"):
        RsaPrivateKey(p, q, 3)
    with pytest.raises(InvalidKeyError, match="not invertible"):
        RsaPrivateKey(q, p, 3)


@pytest.mark.parametrize("composite_is_larger", [True, False])
def test_each_factor_must_be_prime(composite_is_larger: bool) -> None:
    """PROTOCOL.md §5: both factors are checked for primality, the larger and the smaller
    (the key keeps the larger as p)."""
    if composite_is_larger:
        composite = _prime_near(7 << 253, 2) * _prime_near(1 << 256, 1)  # about 1.75 * 2^511
        prime = _prime_near(3 << 510, 2)  # about 1.5 * 2^511
    else:
        composite = _prime_near(3 << 254, 2) * _prime_near(1 << 256, 1)  # about 1.5 * 2^511
        prime = _prime_near(7 << 509, 2)  # about 1.75 * 2^511
    assert (composite > prime) is composite_is_larger
    assert (composite * prime).bit_length() == 1024 and composite % 3 == 2
    with pytest.raises(InvalidKeyError, match="not prime"):
        RsaPrivateKey(prime, composite, 3)


def test_generate_holds_the_size_it_was_asked_for(
    ca_key: RsaPrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PROTOCOL.md §5: a generated key has exactly the bits asked for; a library that gave
    another size (OpenSSL never does) is refused rather than handed on."""
    monkeypatch.setattr(crypto_rsa, "generate_private_key", lambda **_: ca_key.to_cryptography())
    with pytest.raises(InvalidKeyError, match="generated a 1024-bit modulus, wanted 1032"):
        generate(1032, 3)


def test_a_key_with_one_small_prime_is_refused() -> None:
    """A 1024-bit modulus made of a 256-bit and a 768-bit prime is within PROTOCOL.md §5's
    sizes, yet its small factor falls to ECM: each prime must have about half the modulus's
    bits (FIPS 186-4 B.3.1), else InvalidKeyError."""
    p = _prime_near(3 << 766, 2)
    q = _prime_near(3 << 254, 2)
    assert (p * q).bit_length() == 1024
    with pytest.raises(InvalidKeyError, match="unequal sizes"):
        RsaPrivateKey(p, q, 3)
    with pytest.raises(InvalidKeyError, match="unequal sizes"):
        RsaPrivateKey(q, p, 3)


def test_a_key_whose_primes_are_too_close_is_refused() -> None:
    """Primes that agree in their top 100 bits give n away to Fermat's method (their mean
    is about sqrt(n)): |p - q| must exceed 2^(bits/2 - 100) (FIPS 186-4 B.3.1), else
    InvalidKeyError."""
    p = _prime_near(3 << 510, 2)
    q = _prime_near(p + (1 << 400), 2)
    assert (p * q).bit_length() == 1024 and q - p < 1 << 412
    with pytest.raises(InvalidKeyError, match="too close"):
        RsaPrivateKey(p, q, 3)
    far = _prime_near(p + (1 << 420), 2)  # differ above bit 412: a sound key
    assert RsaPrivateKey(p, far, 3).public.n == p * far


def test_the_private_exponents_go_only_to_constant_time_powmod_of_blinded_input(
    published_primes: dict[int, tuple[int, int, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/protocol-choices.md "the RSA private operation": the secret exponents d mod
    (p-1) and d mod (q-1) meet only GMP's `mpz_powm_sec`, once per prime, and what they
    raise is blinded: not x mod p (or q), and another base at each signing of the same x,
    though the signature is the same. The plain powmod sees only the public exponent."""
    p, q, e = next(iter(published_primes.values()))
    key = RsaPrivateKey(p, q, e)
    d = pow(e, -1, math.lcm(p - 1, q - 1))
    secret_calls: list[tuple[int, int, int]] = []
    plain_exponents: list[int] = []
    powmod_sec, powmod = gmpy2.powmod_sec, gmpy2.powmod

    def recording_sec(base: object, exp: object, mod: object) -> object:
        secret_calls.append((int(base), int(exp), int(mod)))  # type: ignore[call-overload]
        return powmod_sec(base, exp, mod)

    def recording(base: object, exp: object, mod: object) -> object:
        plain_exponents.append(int(exp))  # type: ignore[call-overload]
        return powmod(base, exp, mod)

    monkeypatch.setattr(gmpy2, "powmod_sec", recording_sec)
    monkeypatch.setattr(gmpy2, "powmod", recording)
    x = secrets.randbelow(key.public.n)
    signatures = {key.private_op(x) for _ in range(3)}
    assert signatures == {pow(x, d, p * q)}
    assert len(secret_calls) == 6
    assert {(exp, mod) for _, exp, mod in secret_calls} == {(d % (p - 1), p), (d % (q - 1), q)}
    assert all(base != x % mod for base, _, mod in secret_calls)
    assert len({base for base, _, mod in secret_calls if mod == p}) == 3  # fresh blinding
    assert set(plain_exponents) == {e}


def _counting_inverts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """gmpy2.invert, counted: one call per blinding made (the key's own inverses are made
    when it is built)."""
    calls: list[int] = []
    invert = gmpy2.invert

    def counting(a: object, m: object) -> object:
        calls.append(1)
        return invert(a, m)

    monkeypatch.setattr(gmpy2, "invert", counting)
    return calls


def test_a_prepared_blinding_serves_the_next_private_operation_once(
    published_primes: dict[int, tuple[int, int, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """prepare() makes the next signature's blinding ahead (the card's commit thread, while
    it signs): the next private operation makes none, the one after makes its own again,
    and every signature is the same correct one."""
    p, q, e = next(iter(published_primes.values()))
    key = RsaPrivateKey(p, q, e)
    d = pow(e, -1, math.lcm(p - 1, q - 1))
    x = secrets.randbelow(key.public.n)
    inverts = _counting_inverts(monkeypatch)
    key.prepare()
    assert len(inverts) == 1
    assert key.private_op(x) == pow(x, d, p * q)
    assert len(inverts) == 1  # the prepared one, used
    assert key.private_op(x) == pow(x, d, p * q)
    assert len(inverts) == 2  # used once only: a fresh one
    key.prepare()
    key.prepare()  # one kept: the newer
    assert key.private_op(x) == key.private_op(x) == pow(x, d, p * q)
    assert len(inverts) == 5


def test_a_blinding_prepared_before_forget_prepared_is_not_used(
    published_primes: dict[int, tuple[int, int, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A forked child holds a copy of its parent's prepared blinding; forget_prepared()
    (called in the child, applet/store.py) makes it make its own, so no blinding serves two
    processes' signatures."""
    p, q, e = next(iter(published_primes.values()))
    key = RsaPrivateKey(p, q, e)
    key.prepare()
    inverts = _counting_inverts(monkeypatch)
    forget_prepared()
    x = secrets.randbelow(key.public.n)
    assert key.private_op(x) == pow(x, pow(e, -1, math.lcm(p - 1, q - 1)), p * q)
    assert len(inverts) == 1


def test_prepared_blindings_still_blind_each_signature_afresh(
    published_primes: dict[int, tuple[int, int, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a blinding prepared before each signature, the constant-time powmod still sees
    another base each time, never x mod p."""
    p, q, e = next(iter(published_primes.values()))
    key = RsaPrivateKey(p, q, e)
    bases: list[int] = []
    powmod_sec = gmpy2.powmod_sec

    def recording_sec(base: object, exp: object, mod: object) -> object:
        if int(mod) == p:  # type: ignore[call-overload]
            bases.append(int(base))  # type: ignore[call-overload]
        return powmod_sec(base, exp, mod)

    monkeypatch.setattr(gmpy2, "powmod_sec", recording_sec)
    x = secrets.randbelow(key.public.n)
    for _ in range(3):
        key.prepare()
        key.private_op(x)
    assert len(bases) == 3 and len(set(bases)) == 3 and x % p not in bases

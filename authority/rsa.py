"""Raw RSA (hazmat): the only module that touches d, p and q (PROTOCOL.md §5).

`cryptography` generates keys and (de)serializes them; it offers no raw RSA, so the private
operation is ours: CRT, RSA blinding, GMP's constant-time `mpz_powm_sec`, and a check of the
result with the public key before anything leaves (the fault-attack guard).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, Final

import gmpy2
from cryptography.hazmat.primitives.asymmetric import rsa as crypto_rsa

from authority.errors import InvalidKeyError, SigningFaultError

MIN_BITS: Final = 1024
MAX_BITS: Final = 1984
BITS_STEP: Final = 8
EXPONENTS: Final = frozenset({3, 65537})
DEFAULT_BITS: Final = 1984
DEFAULT_EXPONENT: Final = 3
_BLINDING_TRIES: Final = 8
_MIN_PRIME_DISTANCE_BITS: Final = 100  # |p - q| > 2^(bits/2 - 100), FIPS 186-4 B.3.1


def check_size(bits: int) -> None:
    """Refuse a modulus size outside 1024..1984 bits in steps of 8 (PROTOCOL.md §5)."""
    if not (MIN_BITS <= bits <= MAX_BITS and bits % BITS_STEP == 0):
        raise InvalidKeyError(
            f"modulus of {bits} bits: must be {MIN_BITS} to {MAX_BITS} in steps of {BITS_STEP}"
        )


def check_exponent(e: int) -> None:
    """Refuse a public exponent other than 3 or 65537 (PROTOCOL.md §5)."""
    if e not in EXPONENTS:
        raise InvalidKeyError(f"public exponent {e}: must be 3 or 65537")


def _check_balance(p: int, q: int, bits: int) -> None:
    """Refuse primes a key file may hold that give n away (FIPS 186-4 B.3.1): one much
    shorter than the other (ECM finds it), or p and q agreeing in their top 100 bits
    (Fermat's method). OpenSSL's keys pass; a key made elsewhere must too."""
    if abs(p.bit_length() - q.bit_length()) > 1:
        raise InvalidKeyError("prime factors of unequal sizes")
    if abs(p - q) <= 1 << (bits // 2 - _MIN_PRIME_DISTANCE_BITS):
        raise InvalidKeyError("prime factors too close")


@dataclass(frozen=True)
class RsaPublicKey:
    """An RSA public key of PROTOCOL.md §5: n of 1024..1984 bits (step 8), e 3 or 65537."""

    n: int
    e: int

    def __post_init__(self) -> None:
        check_size(self.n.bit_length())
        check_exponent(self.e)
        if self.n % 2 == 0:
            raise InvalidKeyError("even modulus")

    @property
    def size(self) -> int:
        """The modulus length in bytes (N_CA or N_APP)."""
        return self.n.bit_length() // 8

    @property
    def bits(self) -> int:
        """The modulus length in bits."""
        return self.n.bit_length()

    def modulus_bytes(self) -> bytes:
        """The modulus, big-endian, `size` bytes."""
        return self.n.to_bytes(self.size, "big")

    def exponent_bytes(self) -> bytes:
        """The exponent as `9F47` holds it: 1 byte (03) or 3 bytes (01 00 01)."""
        return self.e.to_bytes(1 if self.e < 256 else 3, "big")

    def public_op(self, s: int) -> int:
        """s^e mod n (the verifier's side); 0 <= s < n is the caller's check."""
        return int(gmpy2.powmod(s, self.e, self.n))


class RsaPrivateKey:
    """An RSA private key; its repr and errors never show d, p or q."""

    __slots__ = ("_d", "_dp", "_dq", "_n", "_n_int", "_p", "_q", "_qinv", "public")

    public: RsaPublicKey

    def __init__(self, p: int, q: int, e: int) -> None:
        """Build from the two primes and e; checks every relation, never echoes a secret."""
        if p == q or p < 3 or q < 3:
            raise InvalidKeyError("invalid prime factors")
        if p < q:
            p, q = q, p
        public = RsaPublicKey(p * q, e)  # size and exponent checks
        mp, mq = gmpy2.mpz(p), gmpy2.mpz(q)
        if not (gmpy2.is_prime(mp, 25) and gmpy2.is_prime(mq, 25)):
            raise InvalidKeyError("prime factors are not prime")
        _check_balance(p, q, public.bits)
        lam = gmpy2.lcm(mp - 1, mq - 1)
        if gmpy2.gcd(e, lam) != 1:
            raise InvalidKeyError("exponent not invertible for these primes")
        d = gmpy2.invert(e, lam)
        self.public = public
        self._n = gmpy2.mpz(public.n)
        self._n_int = public.n
        self._p, self._q, self._d = mp, mq, d
        self._dp = d % (mp - 1)
        self._dq = d % (mq - 1)
        self._qinv = gmpy2.invert(mq, mp)

    def __repr__(self) -> str:
        return f"RsaPrivateKey(bits={self.public.bits}, e={self.public.e})"

    def __reduce__(self) -> Any:
        raise TypeError("RsaPrivateKey cannot be pickled")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RsaPrivateKey) and other.public == self.public

    def __hash__(self) -> int:
        return hash(self.public)

    def private_op(self, x: int) -> int:
        """x^d mod n: blinded, CRT with constant-time powmod, checked with the public key.

        The two powmods release the GIL, so the card runtime stores its state while it
        signs (applet/runtime.py)."""
        n, e = self._n, self.public.e
        if not 0 <= x < n:
            raise ValueError("input not below the modulus")
        r, r_inv = self._blinding()
        xb = (x * gmpy2.powmod(r, e, n)) % n
        with gmpy2.context(allow_release_gil=True):  # another thread may flush meanwhile
            m1 = gmpy2.powmod_sec(xb % self._p, self._dp, self._p)
            m2 = gmpy2.powmod_sec(xb % self._q, self._dq, self._q)
        h = (self._qinv * (m1 - m2)) % self._p
        s = ((m2 + h * self._q) * r_inv) % n
        if gmpy2.powmod(s, e, n) != x:
            raise SigningFaultError("the private operation failed its public-key check")
        return int(s)

    def _blinding(self) -> tuple[Any, Any]:
        """A fresh random r, invertible mod n, and its inverse (bounded tries)."""
        n = self._n
        for _ in range(_BLINDING_TRIES):
            r = gmpy2.mpz(secrets.randbelow(self._n_int - 2) + 2)
            try:
                return r, gmpy2.invert(r, n)
            except ZeroDivisionError:  # r shares a factor with n: astronomically rare
                continue
        raise SigningFaultError("no blinding factor found")

    def to_cryptography(self) -> crypto_rsa.RSAPrivateKey:
        """The same key as a `cryptography` object (for PKCS#8 serialization only)."""
        p, q, d = int(self._p), int(self._q), int(self._d)
        numbers = crypto_rsa.RSAPrivateNumbers(
            p=p,
            q=q,
            d=d,
            dmp1=int(self._dp),
            dmq1=int(self._dq),
            iqmp=int(self._qinv),
            public_numbers=crypto_rsa.RSAPublicNumbers(self.public.e, self.public.n),
        )
        return numbers.private_key()


def from_cryptography(key: crypto_rsa.RSAPrivateKey) -> RsaPrivateKey:
    """Our key from a `cryptography` RSA private key (checked against PROTOCOL.md §5)."""
    numbers = key.private_numbers()
    return RsaPrivateKey(numbers.p, numbers.q, numbers.public_numbers.e)


def public_from_cryptography(key: crypto_rsa.RSAPublicKey) -> RsaPublicKey:
    """Our public key from a `cryptography` RSA public key (checked against PROTOCOL.md §5)."""
    numbers = key.public_numbers()
    return RsaPublicKey(numbers.n, numbers.e)


def public_to_cryptography(key: RsaPublicKey) -> crypto_rsa.RSAPublicKey:
    """The same public key as a `cryptography` object (for SubjectPublicKeyInfo PEM)."""
    return crypto_rsa.RSAPublicNumbers(key.e, key.n).public_key()


def generate(bits: int = DEFAULT_BITS, exponent: int = DEFAULT_EXPONENT) -> RsaPrivateKey:
    """A new key pair of `bits` (1024..1984, step 8) and e 3 or 65537 (PROTOCOL.md §5)."""
    check_size(bits)
    check_exponent(exponent)
    key = crypto_rsa.generate_private_key(public_exponent=exponent, key_size=bits)
    ours = from_cryptography(key)
    if ours.public.bits != bits:  # OpenSSL gives the exact size; hold it anyway
        raise InvalidKeyError(f"generated a {ours.public.bits}-bit modulus, wanted {bits}")
    return ours

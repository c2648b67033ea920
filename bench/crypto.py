"""Our ISO/IEC 9796-2 sign and recover against `cryptography`'s PKCS#1 v1.5 sign and verify.

Same key (1984 bits), same run; prints the ratios (goal: sign <= 1.5x, recover <= 1.5x).
Run: .venv/bin/python bench/crypto.py [--exponent 3|65537] [--rounds N]

The sign time is two `mpz_powm_sec` calls, so it follows the GMP that gmpy2 links: the PyPI
wheel bundles a GMP without this CPU's assembly; gmpy2 built against Debian's libgmp
(`pip install --no-binary gmpy2 gmpy2`, with libgmp-dev libmpfr-dev libmpc-dev) is faster.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import gmpy2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from timing import per_call_s

from authority import iso9796
from authority.rsa import generate


def per_call_us(fn: Callable[[], object], rounds: int) -> float:
    """Median time of one call, in microseconds."""
    return per_call_s(fn, rounds) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bits", type=int, default=1984)
    parser.add_argument("--exponent", type=int, default=3, choices=[3, 65537])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()

    key = generate(args.bits, args.exponent)
    theirs = key.to_cryptography()
    their_public = theirs.public_key()
    size = key.public.size
    recovered = b"\x6a" + bytes(range(256))[: size - 2] + b"\xbc"
    message = recovered
    signature = iso9796.sign(key, recovered)
    pkcs1 = theirs.sign(message, padding.PKCS1v15(), hashes.SHA256())

    def their_verify() -> None:
        their_public.verify(pkcs1, message, padding.PKCS1v15(), hashes.SHA256())

    ours_sign = per_call_us(lambda: iso9796.sign(key, recovered), args.rounds)
    base_sign = per_call_us(
        lambda: theirs.sign(message, padding.PKCS1v15(), hashes.SHA256()), args.rounds
    )
    ours_recover = per_call_us(lambda: iso9796.recover(key.public, signature), args.rounds * 10)
    base_verify = per_call_us(their_verify, args.rounds * 10)

    print(f"RSA {args.bits} bits, e = {args.exponent}, {args.rounds} rounds (median of 5)")
    print(f"  gmpy2 {gmpy2.version()} with {gmpy2.mp_version()}")
    print(f"  sign    ours (9796-2, CRT, blinding, powmod_sec, checked) {ours_sign:9.1f} us")
    print(f"          cryptography PKCS#1 v1.5 SHA-256                 {base_sign:9.1f} us")
    print(f"          ratio {ours_sign / base_sign:.2f}x (goal <= 1.5x)")
    print(f"  recover ours (9796-2 recover, header/trailer)             {ours_recover:9.1f} us")
    print(f"          cryptography PKCS#1 v1.5 verify                   {base_verify:9.1f} us")
    print(f"          ratio {ours_recover / base_verify:.2f}x (goal <= 1.5x)")


if __name__ == "__main__":
    main()

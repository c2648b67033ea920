#!/usr/bin/env python3
"""Make the published-test-key profile vectors/profiles/test-card-1 (PROTOCOL.md §8).

Run once; the files it writes are committed, so vectors replay byte for byte. The keys are
PUBLISHED TEST KEYS: anyone can read them, nothing real may ever trust them.

    python scripts/make_profile.py [--force]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from applet.profile import IssueRequest, issue_card  # noqa: E402
from authority.keyfiles import save_private, save_public  # noqa: E402
from authority.rsa import generate  # noqa: E402

NAME = "test-card-1"
FOLDER = ROOT / "vectors" / "profiles" / NAME
REQUEST = IssueRequest(
    account="6200123456789012",
    limit=100_000,  # 1000.00 CNY
    expiry="301231",
    holder="TEST/CARD ONE",
    ca_index=1,
    serial=1,
    currency=156,
    published_test_keys=True,
)
TERMINAL = {"terminal_id": "TERM0001", "merchant_id": "MERCHANT0000001", "country": "0156"}
README = """# test-card-1: PUBLISHED TEST KEYS

Everything in this folder is public test material. `ca-01.pem` (the test credit authority,
index 01) and `app.pem` (the card's APP key) are **published test keys**: never trust them
for anything real, never issue a real card with them.

- keys: RSA 1984 bits (PROTOCOL.md §5's default), e = 3 (one of §5's two); license serial 1, SHA-256
- card: account 6200123456789012, expiry 2030-12-31, holder TEST/CARD ONE,
  limit 1000.00 (100000 minor units), currency 156 (CNY)
- `terminal.json`: the terminal id (9F1C), merchant id (9F16) and country (9F1A) the
  vectors use
- no `state.json`: a replay starts from the state its vector names (PROTOCOL.md §8)

Made once by `python scripts/make_profile.py`; regenerating makes new keys and so new
vectors (`python scripts/gen_vectors.py`).
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="replace an existing profile")
    args = parser.parse_args()
    if (FOLDER / "card.json").exists():
        if not args.force:
            print(f"{FOLDER} exists (use --force to make new keys)", file=sys.stderr)
            return 1
        (FOLDER / "card.json").unlink()
    ca = generate(1984, 3)
    app = generate(1984, 3)
    FOLDER.mkdir(parents=True, exist_ok=True)
    save_private(FOLDER / "ca-01.pem", ca)
    save_public(FOLDER / "ca-01.pub.pem", ca.public)
    issue_card(FOLDER, REQUEST, ca, app)
    for pem in ("ca-01.pem", "app.pem"):
        (FOLDER / pem).chmod(0o644)  # published: readable by anyone, on purpose
    FOLDER.chmod(0o755)
    (FOLDER / "terminal.json").write_text(json.dumps(TERMINAL, indent=2) + "\n", "utf-8")
    (FOLDER / "README.md").write_text(README, "utf-8")
    print(f"wrote {FOLDER}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

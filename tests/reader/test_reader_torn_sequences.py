"""Adversarial sequences around torn payments (PROTOCOL.md §9): the promise is that nothing
is lost and nothing is counted twice; once the card has made its next clean contact, its used
credit equals the sum of the approved amounts the terminal records."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from applet.runtime import CardRuntime
from applet.state import MAX_ATC, CardState
from authority.keystore import KeyStore
from reader import checks
from reader.flow import Env, NotRecordedError, Outcome, PaymentRequest, TerminalConfig, pay
from reader.log import LogError, TransactionLog
from reader.recovery import PendingEntry
from reader.transport import ChainingTransport, InProcessTransport, Transport

INS_GAC, INS_GET_DATA = 0xAE, 0xCA
NOW = datetime(2026, 11, 28, 12, 0, 0)


class NoRecord:
    """The log, whose record() fails (a full disk): the verified payment goes to the spool."""

    def __init__(self, inner: TransactionLog) -> None:
        self.inner = inner

    def write_pending(self, pending: PendingEntry, now: datetime) -> None:
        self.inner.write_pending(pending, now)

    def close_pending(self, pending: PendingEntry, outcome: str = "refused") -> None:
        self.inner.close_pending(pending, outcome)

    def pending(self) -> list[PendingEntry]:
        return self.inner.pending()

    def record(self, outcome: Outcome, *, later: bool = False) -> int:
        raise LogError("cannot record the transaction: disk full")


class Hook:
    """A transport whose answer to one INS is replaced by `alter(answer)`."""

    name = "hook"

    def __init__(self, card: CardRuntime, ins: int, alter: Callable[[bytes], bytes]) -> None:
        self.inner = ChainingTransport(InProcessTransport(card))
        self.ins, self.alter = ins, alter

    def connect(self) -> bytes:
        return self.inner.connect()

    def transmit(self, command: bytes) -> bytes:
        answer = self.inner.transmit(command)
        return self.alter(answer) if command[1] == self.ins else answer

    def disconnect(self) -> None:
        self.inner.disconnect()


def clean(card: CardRuntime) -> Transport:
    return ChainingTransport(InProcessTransport(card))


def torn(card: CardRuntime) -> Transport:
    """The card deducts; its GENERATE AC answer reaches the terminal as 6F00."""
    return Hook(card, INS_GAC, lambda _: b"\x6f\x00")


def un(n: int) -> Env:
    return Env(NOW + timedelta(minutes=n), bytes([n, n, n, n]))


def approved_sum(log: TransactionLog) -> int:
    return sum(r.outcome.amount for r in log.rows() if r.outcome.approved)


def test_a_torn_payment_recovered_while_its_own_row_was_spooled_counts_once(
    make_card: Callable[..., CardRuntime],
    cfg: TerminalConfig,
    keys: KeyStore,
    log: TransactionLog,
) -> None:
    """The answer arrived and verified, but the log could not store it (spooled, entry left
    open); the next contact proves it from DF02 and records it; the spool's import is then a
    duplicate (PROTOCOL.md §7 check 5): one row."""
    from reader.log import outcome_to_json
    from reader.spool import Imported

    card = make_card()
    with pytest.raises(NotRecordedError) as caught:
        pay(clean(card), cfg, PaymentRequest(1234), un(1), keys, NoRecord(log))
    spooled = outcome_to_json(caught.value.outcome)
    assert [e.atc for e in log.pending()] == [1]
    paid = pay(clean(card), cfg, PaymentRequest(100), un(2), keys, log)
    assert [o.atc for o in paid.recovered] == [1]
    assert log.import_entry(spooled) is Imported.DUPLICATE
    assert [r.outcome.atc for r in log.rows()] == [1, 2]
    assert card.state.card.used == approved_sum(log) == 1334


def test_a_spooled_torn_payment_imported_before_the_card_returns_counts_once(
    make_card: Callable[..., CardRuntime],
    cfg: TerminalConfig,
    keys: KeyStore,
    log: TransactionLog,
) -> None:
    """The reverse order: the spool is imported first (the entry closes as recorded); the
    card's next contact finds no open entry, so nothing is recorded twice."""
    from reader.log import outcome_to_json
    from reader.spool import Imported

    card = make_card()
    first = pay(clean(card), cfg, PaymentRequest(1234), un(1), keys, log)
    spooled = outcome_to_json(first.outcome)
    log.write_pending(  # the entry written again: a crash reopened it
        PendingEntry(bytes.fromhex("6200123456789012FFFF"), 1, first.outcome.cdol1_data), NOW
    )
    log.write_pending(
        PendingEntry(bytes.fromhex("6200123456789012FFFF"), 1, first.outcome.cdol1_data), NOW
    )
    assert len(log.pending()) == 1  # the same entry written twice is one entry
    assert log.import_entry(spooled) is Imported.DUPLICATE
    assert log.pending() == []
    paid = pay(clean(card), cfg, PaymentRequest(100), un(2), keys, log)
    assert paid.recovered == ()
    assert card.state.card.used == approved_sum(log) == 1334


def test_a_torn_payment_is_recovered_when_the_terminals_clock_went_backwards(
    make_card: Callable[..., CardRuntime],
    cfg: TerminalConfig,
    keys: KeyStore,
    log: TransactionLog,
) -> None:
    """The recovery contact's clock is a day before the torn payment's: the torn row keeps
    its own time (its CDOL1 data), and is recorded once."""
    card = make_card()
    with pytest.raises(checks.StatusError):
        pay(torn(card), cfg, PaymentRequest(1234), un(1), keys, log)
    earlier = Env(NOW - timedelta(days=1), bytes.fromhex("0A0B0C0D"))
    paid = pay(clean(card), cfg, PaymentRequest(100), earlier, keys, log)
    assert [(o.atc, o.time) for o in paid.recovered] == [(1, un(1).now)]
    assert card.state.card.used == approved_sum(log) == 1334 and log.pending() == []


def test_a_torn_contact_at_the_recovery_contact_is_itself_recovered_next_time(
    make_card: Callable[..., CardRuntime],
    cfg: TerminalConfig,
    keys: KeyStore,
    log: TransactionLog,
) -> None:
    """Torn, then torn again at the contact that recovers the first: each payment is
    recorded once, at the contact after it."""
    card = make_card()
    with pytest.raises(checks.StatusError):
        pay(torn(card), cfg, PaymentRequest(1234), un(1), keys, log)
    with pytest.raises(checks.StatusError):
        pay(torn(card), cfg, PaymentRequest(500), un(2), keys, log)
    assert [e.atc for e in log.pending()] == [2]
    paid = pay(clean(card), cfg, PaymentRequest(100), un(3), keys, log)
    assert [o.atc for o in paid.recovered] == [2]
    assert [r.outcome.atc for r in log.rows()] == [1, 2, 3]
    assert card.state.card.used == approved_sum(log) == 1834


@pytest.mark.parametrize(
    "alter",
    [lambda _: b"\x6f\x00", lambda _: b"\x69\x85", lambda a: a[:20] + a[-2:]],
    ids=["6F00", "6985", "cut"],
)
def test_a_last_answer_that_cannot_be_read_leaves_the_entry_open(
    make_card: Callable[..., CardRuntime],
    cfg: TerminalConfig,
    keys: KeyStore,
    log: TransactionLog,
    alter: Callable[[bytes], bytes],
) -> None:
    """GET DATA DF02 answered with an error status other than 6A88, or cut in transit: the
    terminal has not read the card's last answer, which proves nothing either way. Closing
    the entry as not paid, then sending this contact's GENERATE AC (which replaces the last
    answer), lost a payment the card made. The entry stays open and this contact is refused
    before GENERATE AC; the next clean contact records the torn payment once."""
    card = make_card()
    with pytest.raises(checks.StatusError):
        pay(torn(card), cfg, PaymentRequest(1234), un(1), keys, log)
    with pytest.raises(checks.ResponseError, match="DF02"):
        pay(Hook(card, INS_GET_DATA, alter), cfg, PaymentRequest(100), un(2), keys, log)
    assert [e.atc for e in log.pending()] == [1] and log.count() == 0
    assert card.state.card.used == 1234  # this contact's payment was not made
    paid = pay(clean(card), cfg, PaymentRequest(100), un(3), keys, log)
    assert [o.atc for o in paid.recovered] == [1]
    assert card.state.card.used == approved_sum(log) == 1334 and log.pending() == []


def test_two_terminals_tearing_in_turn_lose_both_as_documented(
    make_card: Callable[..., CardRuntime],
    cfg: TerminalConfig,
    keys: KeyStore,
    tmp_path: Path,
) -> None:
    """docs/security.md, "a torn payment when the card pays elsewhere first": terminal A
    tears, terminal B tears, the card returns to A, then to B. Each reads a last answer for
    another transaction and closes its entry as not paid; the card paid both."""
    card = make_card()
    other = TerminalConfig("TERM0002", "MERCHANT0000002", 156)
    with TransactionLog(tmp_path / "a.db") as a, TransactionLog(tmp_path / "b.db") as b:
        with pytest.raises(checks.StatusError):
            pay(torn(card), cfg, PaymentRequest(1000), un(1), keys, a)
        with pytest.raises(checks.StatusError):
            pay(torn(card), other, PaymentRequest(200), un(2), keys, b)
        pay(clean(card), cfg, PaymentRequest(30), un(3), keys, a)
        pay(clean(card), other, PaymentRequest(4), un(4), keys, b)
        other_transaction = "not paid: the card's last answer is for another transaction"
        assert [(r.entry.atc, r.outcome) for r in a.pending_rows()] == [(1, other_transaction)]
        assert [(r.entry.atc, r.outcome) for r in b.pending_rows()] == [(2, other_transaction)]
        assert card.state.card.used == 1234
        assert approved_sum(a) + approved_sum(b) == 34  # the documented limitation


def test_a_torn_payment_at_the_last_atc_stays_open_as_documented(
    make_card: Callable[..., CardRuntime],
    cfg: TerminalConfig,
    keys: KeyStore,
    log: TransactionLog,
) -> None:
    """docs/security.md: a torn payment made with the ATC FFFF (PROTOCOL.md §6: every GPO
    after it is 6985) cannot be proven: the terminal needs the card's records (the license,
    so the APP key) to verify the last answer, and the card answers READ RECORD only after
    a GPO. The entry stays open (never closed as not paid); the payment is not recorded."""
    card = make_card(CardState(atc=MAX_ATC - 1))
    with pytest.raises(checks.StatusError):
        pay(torn(card), cfg, PaymentRequest(1234), un(1), keys, log)
    assert [e.atc for e in log.pending()] == [MAX_ATC]
    for n in (2, 3):
        with pytest.raises(checks.StatusError, match="6985"):
            pay(clean(card), cfg, PaymentRequest(100), un(n), keys, log)
    assert [e.atc for e in log.pending()] == [MAX_ATC] and log.count() == 0
    assert card.state.card.used == 1234


def test_a_spooled_torn_payment_closed_as_not_paid_reads_as_recorded_once_imported(
    make_card: Callable[..., CardRuntime],
    cfg: TerminalConfig,
    keys: KeyStore,
    log: TransactionLog,
    tmp_path: Path,
) -> None:
    """The answer verified but the log could not store it (spooled, entry left open); the
    card pays at another terminal, so its next contact here closes the entry as not paid
    (another transaction); `hcepay log recover` then imports the spooled row. Nothing is
    lost, and the entry's outcome says so: "recorded", not "not paid" beside a row."""
    from reader.log import OUTCOME_RECORDED, outcome_to_json
    from reader.spool import Imported

    card = make_card()
    with pytest.raises(NotRecordedError) as caught:
        pay(clean(card), cfg, PaymentRequest(1234), un(1), keys, NoRecord(log))
    spooled = outcome_to_json(caught.value.outcome)
    with TransactionLog(tmp_path / "elsewhere.db") as elsewhere:
        pay(clean(card), cfg, PaymentRequest(5), un(2), keys, elsewhere)
    pay(clean(card), cfg, PaymentRequest(100), un(3), keys, log)
    assert log.import_entry(spooled) is Imported.INSERTED
    assert [(r.outcome.atc, r.outcome.amount) for r in log.rows()] == [(3, 100), (1, 1234)]
    assert [(r.entry.atc, r.outcome) for r in log.pending_rows()] == [(1, OUTCOME_RECORDED)]


def test_a_torn_payment_one_before_the_last_atc_is_recovered_by_the_last_gpo(
    make_card: Callable[..., CardRuntime],
    cfg: TerminalConfig,
    keys: KeyStore,
    log: TransactionLog,
) -> None:
    """Torn at ATC FFFE: the next contact's GPO makes FFFF (answered, PROTOCOL.md §6 and
    docs/protocol-choices.md), so the records are read and the torn payment recorded once;
    after that the card answers 6985 and the log and the card agree."""
    card = make_card(CardState(atc=MAX_ATC - 2))
    with pytest.raises(checks.StatusError):
        pay(torn(card), cfg, PaymentRequest(1234), un(1), keys, log)
    paid = pay(clean(card), cfg, PaymentRequest(100), un(2), keys, log)
    assert [o.atc for o in paid.recovered] == [MAX_ATC - 1] and paid.outcome.atc == MAX_ATC
    with pytest.raises(checks.StatusError, match="6985"):
        pay(clean(card), cfg, PaymentRequest(100), un(3), keys, log)
    assert card.state.card.used == approved_sum(log) == 1334 and log.pending() == []


def test_an_unreadable_last_answer_does_not_stop_a_card_with_no_entry_of_its_own(
    make_card: Callable[..., CardRuntime],
    cfg: TerminalConfig,
    keys: KeyStore,
    log: TransactionLog,
) -> None:
    """DF02 is read whenever any entry is open; a card with none of its own pays even when
    its DF02 answer cannot be read, and the other card's entry stays open."""
    other = PendingEntry(bytes.fromhex("6200123456789099FFFF"), 3, bytes(42))
    log.write_pending(other, NOW)
    card = make_card()
    pay(Hook(card, INS_GET_DATA, lambda _: b"\x6f\x00"), cfg, PaymentRequest(5), un(1), keys, log)
    assert log.pending() == [other] and card.state.card.used == approved_sum(log) == 5

"""Run-time control: journal records, profiles, atomic changes, context managers, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.drivers.netem import PROFILES, ImpairmentPoint
from harness.errors import ConfigError, RigError
from harness.run.journal import Journal, read_journal

from .helpers import TcpServer, wait_until


def _records(journal: Journal, kind: str) -> list[dict]:
    journal.flush()
    return [r for r in read_journal(journal.path) if r["kind"] == kind]


def test_every_change_is_journalled_with_its_time(
    point: ImpairmentPoint, journal: Journal, echo_server: TcpServer
) -> None:
    point.add_tcp(echo_server.address, name="mqtt")
    point.apply(latency="100ms", loss="2%", direction="up")
    point.profile("3g")
    point.partition("5s")
    point.heal()
    point.reset()
    point.close_after("1KiB")
    injections = _records(journal, "injection")
    assert [r["action"] for r in injections] == ["apply", "profile", "partition", "heal", "reset", "close_after"]
    apply = injections[0]
    assert apply["params"] == {"latency": "100ms", "loss": "2%"} and apply["direction"] == "up"
    assert apply["configured"]["mqtt"]["up"]["delay"] == pytest.approx(0.1)
    assert apply["configured"]["mqtt"]["down"] == {}
    assert injections[1]["params"] == {"name": "3g"}
    assert injections[2]["params"] == {"duration": 5.0}
    assert injections[5]["params"] == {"nbytes": 1024}
    times = [r["t"] for r in injections]
    assert times == sorted(times) and all(t > 0 for t in times)


def test_measured_stats_are_journalled_per_epoch_next_to_the_configuration(
    journal: Journal, echo_server: TcpServer
) -> None:
    with ImpairmentPoint(journal, seed=5, stats_interval=None) as point:
        point.add_tcp(echo_server.address, name="mqtt")
        point.apply(delay="10ms")
        point.apply(delay="20ms")
    stats = _records(journal, "netem.stats")
    reasons = [(r["reason"], r["direction"], r["epoch"]) for r in stats]
    assert reasons == [("apply", "up", 0), ("apply", "down", 0), ("apply", "up", 1), ("apply", "down", 1),
                       ("stop", "up", 2), ("stop", "down", 2)]
    assert stats[2]["configured"] == {"delay": pytest.approx(0.01)}
    assert stats[4]["expected"]["delay_ms"] == pytest.approx(20.0)
    assert {"offered_bytes", "delay_ms", "loss_pct", "loss_bursts"} <= stats[4]["produced"].keys()


def test_periodic_stats(journal: Journal, echo_server: TcpServer) -> None:
    with ImpairmentPoint(journal, seed=5, stats_interval=0.05) as point:
        point.add_tcp(echo_server.address, name="mqtt")
        wait_until(lambda: any(r["reason"] == "periodic" for r in _records(journal, "netem.stats")), 10,
                   "a periodic netem.stats record", lambda: len(_records(journal, "netem.stats")))


def test_a_bad_change_leaves_everything_as_it_was(point: ImpairmentPoint, echo_server: TcpServer) -> None:
    point.add_tcp(echo_server.address, name="mqtt")
    point.add_tcp(echo_server.address, name="ota")
    point.apply(delay="50ms")
    before = {name: point.configured(name) for name in point.services}
    with pytest.raises(ConfigError, match=r"^loss: expected a percentage from 0% to 100%, got '150%'$"):
        point.apply(delay="10ms", loss="150%")
    with pytest.raises(ConfigError, match=r"^reorder: reordering needs a delay"):
        point.apply(direction="down", delay=0, reorder="5%")
    assert {name: point.configured(name) for name in point.services} == before


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda p: p.profile("5g"), r"^profile: unknown profile '5g'; expected one of lan, wifi-weak, lte"),
        (lambda p: p.apply(service="nope", delay="1ms"), r"^service: unknown service 'nope'; expected one of"),
        (lambda p: p.partition("soon"), r"^duration: expected a duration"),
        (lambda p: p.close_after(-1), r"^close_after: expected a size of zero or more"),
        (lambda p: p.add_tcp(("127.0.0.1", 70000)), r"^upstream: expected \(host, port\) with a port 0..65535"),
    ],
)
def test_bad_calls_give_one_line(point: ImpairmentPoint, echo_server: TcpServer, call, message: str) -> None:
    point.add_tcp(echo_server.address, name="mqtt")
    with pytest.raises(ConfigError, match=message) as info:
        call(point)
    assert "\n" not in str(info.value)


def test_impaired_restores_what_was_there(point: ImpairmentPoint, echo_server: TcpServer) -> None:
    point.add_tcp(echo_server.address, name="mqtt")
    point.profile("lte")
    before = point.configured("mqtt")
    with point.impaired(loss="5%", jitter="5ms"):
        during = point.configured("mqtt")
        assert during["up"].loss == pytest.approx(0.05) and during["up"].rate == before["up"].rate
    assert point.configured("mqtt") == before


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_profile_applies(point: ImpairmentPoint, echo_server: TcpServer, name: str) -> None:
    point.add_tcp(echo_server.address, name="mqtt")
    point.profile(name)
    configured = point.configured("mqtt")
    assert not configured["up"].is_clear and not configured["down"].is_clear


def test_statistics_shape(point: ImpairmentPoint, echo_server: TcpServer) -> None:
    point.add_tcp(echo_server.address, name="mqtt")
    point.add_udp(echo_server.address, name="coap")
    stats = point.statistics()
    assert set(stats) == {"mqtt", "coap"}
    assert stats["mqtt"]["proto"] == "tcp" and stats["coap"]["proto"] == "udp"
    for entry in stats.values():
        for direction in ("up", "down"):
            assert {"configured", "expected", "produced"} <= entry[direction].keys()


def test_same_service_name_twice_is_refused(point: ImpairmentPoint, echo_server: TcpServer) -> None:
    point.add_tcp(echo_server.address, name="mqtt")
    with pytest.raises(ConfigError, match=r"^name: service 'mqtt' is already proxied"):
        point.add_tcp(echo_server.address, name="mqtt")


def test_not_started_and_stopped_points_say_so(tmp_path: Path) -> None:
    point = ImpairmentPoint(seed=1)
    with pytest.raises(RigError, match="not started"):
        point.add_tcp(("127.0.0.1", 1))
    point.start()
    point.stop()
    point.stop()  # idempotent
    with pytest.raises(RigError, match="not started"):
        point.statistics()


def test_wait_connections_times_out_with_what_it_saw(point: ImpairmentPoint, echo_server: TcpServer) -> None:
    point.add_tcp(echo_server.address, name="mqtt")
    with pytest.raises(RigError, match=r"timed out after 0.2s waiting for 1 connection\(s\) .*last seen 0"):
        point.wait_connections(1, timeout=0.2)


def test_tcp_reports_packet_only_parameters_as_not_applied(point: ImpairmentPoint, echo_server: TcpServer) -> None:
    point.add_tcp(echo_server.address, name="mqtt")
    point.profile("wifi-weak")
    up = point.statistics("mqtt")["mqtt"]["up"]
    assert up["not_applied"] == ["loss"]
    assert up["expected"]["loss_pct"] is None and up["produced"]["loss_pct"] is None


def test_partition_with_a_duration_journals_its_own_heal(
    point: ImpairmentPoint, journal: Journal, echo_server: TcpServer
) -> None:
    point.add_tcp(echo_server.address, name="mqtt")
    point.partition("50ms")
    wait_until(lambda: not point.statistics()["mqtt"]["refusing"], 10, "the partition to heal by itself",
               lambda: point.statistics()["mqtt"]["refusing"])
    wait_until(lambda: len(_records(journal, "injection")) >= 2, 10, "the heal record",
               lambda: _records(journal, "injection"))
    heal = _records(journal, "injection")[1]
    assert heal["action"] == "heal" and heal["params"] == {"reason": "partition duration elapsed"}
    assert heal["service"] == "mqtt"


def test_concurrent_changes_from_two_threads_are_not_lost(point: ImpairmentPoint, echo_server: TcpServer) -> None:
    import threading

    point.add_tcp(echo_server.address, name="mqtt")

    def worker(direction: str) -> None:
        for i in range(1, 21):
            point.apply(direction=direction, delay=f"{i}ms")

    threads = [threading.Thread(target=worker, args=(d,)) for d in ("up", "down")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    configured = point.configured("mqtt")
    assert configured["up"].delay == pytest.approx(0.020) and configured["down"].delay == pytest.approx(0.020)


def test_heal_and_clear_with_nothing_to_undo_are_not_changes(
    point: ImpairmentPoint, journal: Journal, echo_server: TcpServer
) -> None:
    point.add_tcp(echo_server.address, name="mqtt")
    point.heal()
    point.clear()
    assert _records(journal, "injection") == []
    point.apply(delay="5ms", direction="up")
    point.clear(direction="down")  # already clear there
    point.clear()
    assert [r["action"] for r in _records(journal, "injection")] == ["apply", "clear"]


@pytest.mark.parametrize(("options", "applied", "refused"), [
    ({"nice": 5}, "nice 5", "nice 5 not applied"),  # raising nice is always allowed on Linux
    ({"realtime": True}, "SCHED_FIFO 10", "realtime not applied"),
])
def test_loop_priority_is_applied_or_refused_in_one_line(
    journal: Journal, options: dict, applied: str, refused: str
) -> None:
    with ImpairmentPoint(journal, stats_interval=None, **options) as point:
        assert point.priority == applied or point.priority.startswith(refused), point.priority
    start = _records(journal, "netem.start")[0]
    assert start["priority"] == point.priority and start["selector"] == "PreciseEpollSelector"

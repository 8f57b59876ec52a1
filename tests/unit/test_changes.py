"""What merging an answer does to an asset, and how changes are counted (pure rules)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from surveyor.core.changes import (
    AssetState,
    ChangeKind,
    compare,
    merge_services,
    merge_state,
    state_digest,
    summarize,
)
from surveyor.core.fingerprint import KnownAsset, Observation, Service

T0 = datetime(2026, 3, 1, tzinfo=UTC)
PROBED = frozenset({("tcp", 22), ("tcp", 80), ("tcp", 443)})


def as_known(state: AssetState, *, alive: bool = True) -> KnownAsset:
    return KnownAsset(
        id=1,
        addresses=state.addresses,
        mac=state.mac,
        hostnames=state.hostnames,
        services=state.services,
        os=state.os,
        alive=alive,
        last_seen=T0,
    )


texts = st.sampled_from(["", "a", "b"])
services = st.builds(
    Service,
    port=st.sampled_from([22, 80, 443, 8080]),
    proto=st.just("tcp"),
    banner=texts,
    product=texts,
    http_status=st.none() | st.sampled_from([200, 404]),
    http_title=texts,
    tls_sans=st.sampled_from([(), ("a",)]),
)
service_lists = st.lists(services, max_size=4, unique_by=lambda s: s.key).map(
    lambda found: tuple(sorted(found, key=lambda s: s.key))
)
observations = st.builds(
    Observation,
    addresses=st.sampled_from([("127.0.0.1",), ("127.0.0.2",), ("127.0.0.1", "fe80::1")]),
    mac=st.none() | st.just("00:11:22:33:44:55"),
    hostnames=st.sampled_from([(), ("a.example",), ("a.example", "b.example")]),
    services=service_lists,
    os=texts,
)
probes = st.none() | st.just(PROBED)


@given(observations, observations, probes)
def test_merging_the_same_answer_twice_changes_nothing_the_second_time(
    first: Observation, answer: Observation, probed: frozenset[tuple[str, int]] | None
) -> None:
    before = as_known(merge_state(None, first, probed))
    once = merge_state(before, answer, probed)
    twice = merge_state(as_known(once), answer, probed)
    assert twice == once
    assert compare(as_known(once), twice).kind is ChangeKind.UNCHANGED


@given(observations, probes)
def test_an_answer_compared_with_itself_is_unchanged(
    answer: Observation, probed: frozenset[tuple[str, int]] | None
) -> None:
    state = merge_state(None, answer, probed)
    change = compare(as_known(state), state)
    assert change.kind is ChangeKind.UNCHANGED
    assert change.details == {}


def test_values_the_scan_did_not_report_never_erase_known_ones() -> None:
    known = as_known(
        AssetState(
            ("127.0.0.1",),
            mac="00:11:22:33:44:55",
            hostnames=("db.example",),
            services=(Service(22, banner="SSH-2.0-OpenSSH_9.6", product="OpenSSH 9.6"),),
            os="Debian Linux",
        )
    )
    after = merge_state(known, Observation(("127.0.0.1",), services=(Service(22),)), PROBED)
    assert after.mac == "00:11:22:33:44:55"
    assert after.hostnames == ("db.example",)
    assert after.os == "Debian Linux"
    assert after.services[0].banner == "SSH-2.0-OpenSSH_9.6"
    assert compare(known, after).kind is ChangeKind.UNCHANGED


def test_a_service_on_a_probed_port_that_did_not_answer_is_gone() -> None:
    known = [Service(22), Service(80), Service(3306)]
    after = merge_services(known, [Service(22)], PROBED)
    assert [s.port for s in after] == [22, 3306]


def test_without_probed_ports_the_answer_is_the_complete_service_list() -> None:
    assert [s.port for s in merge_services([Service(22), Service(3306)], [Service(80)], None)] == [
        80
    ]


def test_an_asset_is_new_changed_online_or_unchanged() -> None:
    state = AssetState(("127.0.0.1",), services=(Service(22, name="ssh"),))
    assert compare(None, state).kind is ChangeKind.NEW
    assert compare(as_known(state), state).kind is ChangeKind.UNCHANGED
    assert compare(as_known(state, alive=False), state).kind is ChangeKind.ONLINE
    moved = AssetState(("127.0.0.9",), services=state.services)
    assert compare(as_known(state), moved).kind is ChangeKind.CHANGED


def test_the_change_report_says_what_changed() -> None:
    before = AssetState(
        ("127.0.0.1",),
        hostnames=("a.example",),
        services=(Service(22, name="ssh"), Service(80, name="http", http_title="Old")),
        os="Linux",
    )
    after = AssetState(
        ("127.0.0.2",),
        hostnames=("a.example",),
        services=(Service(80, name="http", http_title="New"), Service(443, name="https")),
        os="FreeBSD",
    )
    change = compare(as_known(before), after)
    assert change.kind is ChangeKind.CHANGED
    assert change.details == {
        "addresses": {"added": ["127.0.0.2"], "removed": ["127.0.0.1"]},
        "os": {"before": "Linux", "after": "FreeBSD"},
        "services": {
            "added": ["tcp/443 https"],
            "removed": ["tcp/22 ssh"],
            "changed": [
                {
                    "service": "tcp/80 http",
                    "fields": {"http_title": {"before": "Old", "after": "New"}},
                }
            ],
        },
    }


def test_a_new_asset_is_described_by_what_it_answered() -> None:
    state = AssetState(("127.0.0.1",), mac="00:11:22:33:44:55", services=(Service(22, name="ssh"),))
    assert compare(None, state).details == {
        "addresses": ["127.0.0.1"],
        "mac": "00:11:22:33:44:55",
        "services": ["tcp/22 ssh"],
    }


def test_the_total_counts_every_answer_but_not_the_silent_assets() -> None:
    summary = summarize({"new": 2, "changed": 3, "offline": 7, "online": 1, "unchanged": 4})
    assert summary == {
        "new": 2,
        "changed": 3,
        "offline": 7,
        "online": 1,
        "unchanged": 4,
        "ignored": 0,
        "total": 10,
    }


@given(observations)
def test_the_digest_of_a_state_depends_only_on_its_values(answer: Observation) -> None:
    state = merge_state(None, answer, None)
    rebuilt = AssetState(
        tuple(str(a) for a in json.loads(json.dumps(state.addresses))),
        state.mac,
        tuple(json.loads(json.dumps(state.hostnames))),
        tuple(Service(*json.loads(json.dumps(s))) for s in state.services),
        "".join(list(state.os)),
    )
    rebuilt = replace(
        rebuilt,
        services=tuple(
            s._replace(tls_sans=tuple(s.tls_sans), cpe=tuple(s.cpe)) for s in rebuilt.services
        ),
    )
    assert state_digest(rebuilt) == state_digest(state)
    changed = replace(state, os=state.os + "x")
    assert state_digest(changed) != state_digest(state)

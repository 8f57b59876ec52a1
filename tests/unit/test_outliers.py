"""The outlier score (core/outliers.py): rare feature values score, common ones do not, and
the reasons name the rare value."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TypeVar

from hypothesis import given, settings
from hypothesis import strategies as st

from surveyor.core.outliers import (
    AssetFeatures,
    FeatureCounts,
    ServiceFacts,
    SiteProfiles,
    features_of,
    name_pattern,
    os_family,
    rarity,
    score,
)

SSH = ServiceFacts("tcp", 22, "ssh", "OpenSSH 9.6")
WEB = ServiceFacts("tcp", 443, "https", "nginx", "CN=web.lab", "CN=Lab CA")


def site(*extra: AssetFeatures) -> FeatureCounts:
    counts = FeatureCounts()
    for index in range(40):
        counts.add(features_of("Ubuntu Linux", f"web{index:02}.lab", [SSH, WEB]))
    for features in extra:
        counts.add(features)
    return counts


def test_a_port_no_peer_has_open_is_the_first_reason() -> None:
    telnet = features_of("Ubuntu 22.04", "web99.lab", [SSH, WEB, ServiceFacts("tcp", 23, "telnet")])
    result = score(telnet, site(telnet))
    assert result.score >= 60
    assert result.reasons[0] == "the only one of 41 Linux hosts with telnet (23) open"


def test_an_ordinary_asset_scores_nothing() -> None:
    ordinary = features_of("Ubuntu Linux", "web05.lab", [SSH, WEB])
    result = score(ordinary, site())
    assert (result.score, result.reasons) == (0, ())


def test_a_rare_issuer_is_named_and_self_signed_certificates_count_as_one() -> None:
    rogue = features_of(
        "Linux", "web77.lab", [SSH, ServiceFacts("tcp", 443, "https", "nginx", "CN=x", "CN=Rogue")]
    )
    assert score(rogue, site(rogue)).reasons[0] == "TLS issuer 'CN=Rogue' seen on 1 of 41 assets"
    own = features_of(
        "Linux", "a1", [ServiceFacts("tcp", 443, tls_subject="CN=a", tls_issuer="CN=a")]
    )
    assert own.issuers == frozenset({"self-signed"})


def test_a_site_where_everything_differs_flags_nothing_as_rare() -> None:
    counts = FeatureCounts()
    assets = [features_of("", f"h{i}", [ServiceFacts("tcp", 1000 + i)]) for i in range(20)]
    for features in assets:
        counts.add(features)
    port_set = [f for f in score(assets[0], counts).findings if f.feature == "port_set"]
    assert port_set == []


def test_rarity_is_zero_for_small_or_common_and_near_one_for_one_in_many() -> None:
    assert rarity(1, 3, 4) == 0.0
    assert rarity(20, 20, 40) == 0.0
    assert rarity(1, 99_999, 100_000) > 0.99


def test_os_family_and_name_pattern() -> None:
    assert os_family("Microsoft Windows Server 2019") == "Windows"
    assert os_family("") == "unknown"
    assert name_pattern("WEB-014.lab") == "web-#.lab"
    assert name_pattern(None) == ""


# The per-asset method and the profiles give the same scores and reasons -------------------


@dataclass(frozen=True)
class Generated:
    """One asset as the store reads it."""

    id: int
    os: str
    hostname: str | None
    recorded_type: str | None
    services: tuple[ServiceFacts, ...]


T = TypeVar("T")
OS_TEXTS = ("Ubuntu Linux 22.04", "Debian 12", "Windows 11", "HP LaserJet", "", "Plan9 4e", "x")
RECORDED = (None, "", "printer", " Router ", "phone")
NAMES = (None, "", "web-014.lab", "WEB-015.lab", "db-deadbeef42.lab", "odd", "a1b2")
PRODUCTS = ("", "nginx", " nginx ", "OpenSSH 9.6", "x" * 230)
ISSUERS = ("", "CN=Lab CA", "CN=Rogue", "self-signed", " CN=Lab CA ", "C" * 320)
PORTS = (("tcp", 22, "ssh"), ("tcp", 23, "telnet"), ("tcp", 80, ""), ("udp", 161, "snmp"))


def _pick(draw: random.Random, values: tuple[T, ...]) -> T:
    """The first values common, each next one a quarter as likely: the last ones rare."""
    return draw.choices(values, weights=[0.25**rank for rank in range(len(values))])[0]


def _service(draw: random.Random, subjects: int) -> ServiceFacts:
    proto, port, name = _pick(draw, PORTS)
    issuer = _pick(draw, ISSUERS)
    # A subject of its own (nearly every certificate's differs), or its issuer: self-signed.
    subject = issuer if draw.random() < 0.2 else f"CN=host{subjects}" if issuer else ""
    return ServiceFacts(
        proto, port, _pick(draw, (name, "http")), _pick(draw, PRODUCTS), subject, issuer
    )


def generated_site(seed: int, count: int) -> list[Generated]:
    """`count` assets from a few OS texts, names, ports, products and issuers in skewed
    shares, so that most share their features with others and some are rare."""
    draw = random.Random(seed)
    site = []
    for index in range(count):
        services = tuple(_service(draw, index) for _ in range(draw.choice((0, 1, 2, 2, 3, 5))))
        site.append(
            Generated(
                id=index * 3 + 1,
                os=_pick(draw, OS_TEXTS),
                hostname=_pick(draw, NAMES),
                recorded_type=_pick(draw, RECORDED),
                services=services,
            )
        )
    return site


def per_asset(site: list[Generated]) -> dict[int, tuple[int, tuple[str, ...]]]:
    """Scores and reasons the documented way: every asset's features counted, then every
    asset scored against the counts."""
    features = {
        asset.id: features_of(
            asset.os, asset.hostname, asset.services, recorded_type=asset.recorded_type
        )
        for asset in site
    }
    counts = FeatureCounts()
    for one in features.values():
        counts.add(one)
    return {
        asset_id: (result.score, result.reasons)
        for asset_id, result in ((i, score(f, counts)) for i, f in features.items())
    }


def by_profiles(site: list[Generated], page: int) -> dict[int, tuple[int, tuple[str, ...]]]:
    profiles = SiteProfiles()
    for asset in site:
        profiles.add(
            asset.id, asset.os, asset.hostname, asset.services, recorded_type=asset.recorded_type
        )
    results = profiles.scores(profiles.counts())
    found: dict[int, tuple[int, tuple[str, ...]]] = {}
    for start in range(0, len(profiles), page):
        for number, asset_ids in profiles.groups(start, start + page):
            for asset_id in asset_ids:
                assert asset_id not in found
                found[asset_id] = (results[number].score, results[number].reasons)
    return found


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    count=st.integers(0, 300),
    page=st.integers(1, 50),
)
def test_profiles_score_every_asset_as_the_per_asset_method_does(
    seed: int, count: int, page: int
) -> None:
    site = generated_site(seed, count)
    assert by_profiles(site, page) == per_asset(site)


def test_a_large_generated_site_keeps_few_profiles_and_the_same_scores() -> None:
    site = generated_site(20_261_206, 3000)
    profiles = SiteProfiles()
    for asset in site:
        profiles.add(
            asset.id, asset.os, asset.hostname, asset.services, recorded_type=asset.recorded_type
        )
    assert len(profiles) == 3000
    assert sum(profiles.sizes) == 3000
    assert len(profiles.profiles) < 3000
    expected = per_asset(site)
    assert by_profiles(site, 1000) == expected
    # The generated site has rare values worth a reason, and ordinary assets.
    assert max(found for found, _ in expected.values()) >= 30
    assert any(reasons for _, reasons in expected.values())
    assert any(found == 0 for found, _ in expected.values())


def test_counts_of_profiles_are_the_counts_of_their_assets() -> None:
    site = generated_site(7, 500)
    profiles = SiteProfiles()
    one_by_one = FeatureCounts()
    for asset in site:
        profiles.add(
            asset.id, asset.os, asset.hostname, asset.services, recorded_type=asset.recorded_type
        )
        one_by_one.add(
            features_of(asset.os, asset.hostname, asset.services, recorded_type=asset.recorded_type)
        )
    assert profiles.counts() == one_by_one

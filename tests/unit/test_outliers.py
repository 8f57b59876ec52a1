"""The outlier score (core/outliers.py): rare feature values score, common ones do not, and
the reasons name the rare value."""

from __future__ import annotations

from surveyor.core.outliers import (
    AssetFeatures,
    FeatureCounts,
    ServiceFacts,
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

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from surveyor.core.ports import TOP100, format_ports
from surveyor.core.scan_params import (
    DEFAULT_MAX_HOST_RATE,
    DEFAULT_MAX_SOCKETS,
    DEFAULT_PROBE_CAP,
    DEFAULT_RATE,
    SCAN_PARAM_KEYS,
    Probe,
    ScanParams,
    ScanParamsError,
    validate_scan_params,
)

SITE_SCOPE = "127.0.0.0/24"
SITE_EXCLUDES = "127.0.0.1"


def validate(params: Mapping[str, object], *, scope_cap: int = 65536) -> ScanParams:
    return validate_scan_params(
        params, default_targets=SITE_SCOPE, default_excludes=SITE_EXCLUDES, scope_cap=scope_cap
    )


def rejection(params: Mapping[str, object], **kwargs: int) -> ScanParamsError:
    with pytest.raises(ScanParamsError) as caught:
        validate(params, **kwargs)
    return caught.value


def test_empty_params_scan_the_site_scope_with_defaults() -> None:
    params = validate({})
    assert params.targets.text == SITE_SCOPE
    assert params.excludes.text == SITE_EXCLUDES
    assert params.scope_size == 255
    assert params.tcp_ports == TOP100
    assert (params.rate, params.max_host_rate, params.max_sockets) == (
        DEFAULT_RATE,
        DEFAULT_MAX_HOST_RATE,
        DEFAULT_MAX_SOCKETS,
    )
    assert params.probes == (Probe.BANNER, Probe.HTTP, Probe.TLS, Probe.RDNS)
    assert params.host_ping is True


def test_given_targets_replace_the_site_scope() -> None:
    params = validate({"targets": "127.168.1.0/30"})
    assert params.targets.text == "127.168.1.0/30"
    assert params.scope_size == 4


def test_a_tasks_excludes_add_to_the_site_excludes() -> None:
    params = validate({"excludes": ["127.0.0.128/25"]})
    assert params.excludes.text == "127.0.0.1,127.0.0.128/25"
    assert params.scope_size == 127
    assert not params.scope.contains(ipaddress.ip_address("127.0.0.1"))


def test_the_site_excludes_cannot_be_dropped_by_an_empty_value() -> None:
    params = validate({"excludes": ""})
    assert params.excludes.text == SITE_EXCLUDES


def test_null_values_fall_back_to_the_defaults() -> None:
    params = validate({"targets": None, "rate": None, "host_ping": None})
    assert (params.targets.text, params.rate, params.host_ping) == (SITE_SCOPE, DEFAULT_RATE, True)


def test_every_documented_key_is_accepted() -> None:
    params = validate(
        {
            "targets": "127.0.1.1 localhost",
            "excludes": "",
            "tcp_ports": "22,80",
            "rate": 50,
            "max_host_rate": 5,
            "max_sockets": 16,
            "probes": ["http", "banner"],
            "host_ping": False,
        }
    )
    assert params.scope_size == 2
    assert params.tcp_ports == (22, 80)
    assert (params.rate, params.max_host_rate, params.max_sockets) == (50, 5, 16)
    assert params.probes == (Probe.BANNER, Probe.HTTP)
    assert params.host_ping is False


def test_values_from_a_form_are_accepted_as_strings() -> None:
    params = validate({"rate": " 250 ", "max_sockets": "64", "host_ping": "False", "probes": "tls"})
    assert (params.rate, params.max_sockets, params.host_ping) == (250, 64, False)
    assert params.probes == (Probe.TLS,)


def test_a_whole_float_from_json_is_accepted_as_a_number() -> None:
    assert validate({"rate": 1e3}).rate == 1000


def test_an_empty_probe_list_runs_discovery_and_port_scan_only() -> None:
    assert validate({"probes": []}).probes == ()


def test_large_ipv6_excludes_are_accepted() -> None:
    params = validate({"targets": "2001:db8::1", "excludes": "2001:db8:1::/48"})
    assert params.scope_size == 1


def test_unknown_keys_are_rejected_naming_them_and_the_valid_keys() -> None:
    error = rejection({"rate": 5, "speed": 9, "ports": "22"})
    assert error.field == "ports"
    assert error.token == "ports"
    assert error.message.startswith("unknown parameters 'ports', 'speed' (valid: targets, ")
    assert all(key in error.message for key in SCAN_PARAM_KEYS)


def test_one_unknown_key_is_named_in_the_singular() -> None:
    assert rejection({"speed": 9}).message.startswith("unknown parameter 'speed' (valid:")


@pytest.mark.parametrize(
    ("params", "field", "token", "message"),
    [
        (
            {"rate": "fast"},
            "rate",
            "fast",
            "'rate' must be a whole number of probes per second, got 'fast'",
        ),
        ({"rate": 0}, "rate", "0", "'rate' must be between 1 and 1,000,000, got 0"),
        ({"rate": 2_000_000}, "rate", "2000000", "must be between 1 and 1,000,000"),
        ({"rate": "99999999999999999999"}, "rate", "99999999999999999999", "between 1 and"),
        ({"rate": 1.5}, "rate", "1.5", "'rate' must be a whole number"),
        ({"rate": True}, "rate", "True", "'rate' must be a whole number"),
        ({"max_host_rate": -3}, "max_host_rate", "-3", "'max_host_rate' must be between 1"),
        ({"max_host_rate": [1]}, "max_host_rate", "[1]", "probes per second to one host"),
        ({"max_sockets": 70000}, "max_sockets", "70000", "must be between 1 and 65,535"),
        ({"max_sockets": "many"}, "max_sockets", "many", "a whole number of sockets"),
        ({"host_ping": "maybe"}, "host_ping", "maybe", "'host_ping' must be true or false"),
        ({"host_ping": 1}, "host_ping", "1", "'host_ping' must be true or false, got 1"),
        ({"probes": ["banner", "ssh"]}, "probes", "ssh", "'ssh' is not a probe (probes: banner"),
        ({"probes": 3}, "probes", "3", "'probes' must be a list of probe names, got 3"),
        ({"probes": ["http", 3]}, "probes", "['http', 3]", "must be a list of probe names"),
        (
            {"targets": "127.0.0.1, 127.0.0.300"},
            "targets",
            "127.0.0.300",
            "'127.0.0.300' is not a valid address, range, network or hostname",
        ),
        ({"excludes": "127.0.0.9-2"}, "excludes", "127.0.0.9-2", "is a reversed range"),
        ({"tcp_ports": "22,70000"}, "tcp_ports", "70000", "'70000' is out of range 1-65535"),
        ({"tcp_ports": "http"}, "tcp_ports", "http", "is not a port, range or preset"),
        ({"targets": 42}, "targets", None, "'targets' must be a string or a list of strings"),
    ],
)
def test_a_bad_value_is_rejected_naming_its_key_and_token(
    params: Mapping[str, object], field: str, token: str | None, message: str
) -> None:
    error = rejection(params)
    assert (error.field, error.token) == (field, token)
    assert message in error.message
    assert str(error) == error.message


def test_an_ipv6_target_prefix_over_the_limit_is_rejected() -> None:
    error = rejection({"targets": "2001:db8::/64"})
    assert (error.field, error.token) == ("targets", "2001:db8::/64")
    assert "at most 65,536 addresses" in error.message


def test_a_scope_over_the_cap_is_rejected_with_its_size() -> None:
    error = rejection({"targets": "127.0.0.0/8", "excludes": ""}, scope_cap=65536)
    assert error.field == "targets"
    assert "16,777,215 addresses" in error.message
    assert "ask an admin to raise the cap" in error.message


def test_an_admin_raised_cap_admits_a_larger_scope() -> None:
    params = validate({"targets": "127.0.0.0/8", "excludes": ""}, scope_cap=2**24)
    assert params.scope_size == 2**24 - 1


def probe_capped(params: Mapping[str, object], cap: int = DEFAULT_PROBE_CAP) -> ScanParams:
    return validate_scan_params(
        params, default_targets="", default_excludes="", scope_cap=65536, probe_cap=cap
    )


def test_every_address_of_the_scope_cap_on_every_port_is_refused_naming_both_numbers() -> None:
    with pytest.raises(ScanParamsError) as caught:
        probe_capped({"targets": "10.0.0.0/16", "tcp_ports": "1-65535"})

    assert caught.value.field == "tcp_ports"
    assert caught.value.message == (
        "the scan would make 4,294,901,760 port probes (65,536 addresses, 65,535 ports each), "
        "more than the cap of 65,536,000 per task; narrow the targets or the ports, or ask "
        "an admin to raise the cap"
    )


def test_the_default_probe_cap_admits_the_scope_cap_on_a_thousand_ports() -> None:
    params = probe_capped({"targets": "10.0.0.0/16", "tcp_ports": "1-1000"})
    assert params.scope_size * len(params.tcp_ports) == DEFAULT_PROBE_CAP
    whole_range = probe_capped({"targets": "127.0.0.1", "tcp_ports": "1-65535"})
    assert len(whole_range.tcp_ports) == 65535


def test_an_admin_raised_probe_cap_admits_more_probes() -> None:
    params = probe_capped({"targets": "10.0.0.0/16", "tcp_ports": "1-65535"}, cap=2**33)
    assert params.scope_size == 65536


@given(addresses=st.integers(1, 256), ports=st.integers(1, 300), cap=st.integers(1, 80_000))
def test_the_probe_cap_bounds_addresses_times_ports(addresses: int, ports: int, cap: int) -> None:
    params = {
        "targets": f"10.0.0.0-10.0.{(addresses - 1) // 256}.{(addresses - 1) % 256}",
        "tcp_ports": f"1-{ports}",
    }
    if addresses * ports > cap:
        with pytest.raises(ScanParamsError, match=f"{addresses:,} address"):
            probe_capped(params, cap)
    else:
        assert probe_capped(params, cap).scope_size == addresses


def test_excludes_that_remove_everything_are_rejected() -> None:
    error = rejection({"excludes": "127.0.0.0/16"})
    assert (error.field, error.message) == ("excludes", "nothing left to scan after excludes")


def test_explicitly_empty_targets_are_rejected() -> None:
    error = rejection({"targets": " "})
    assert (error.field, error.message) == ("targets", "no targets given")


def test_a_site_without_a_default_scope_needs_targets() -> None:
    with pytest.raises(ScanParamsError, match="the site has no default scope") as caught:
        validate_scan_params({}, default_targets="", default_excludes="", scope_cap=10)
    assert caught.value.field == "targets"


def test_a_huge_int_is_reported_without_failing_to_print_it() -> None:
    error = rejection({"rate": 10**5000})
    assert error.field == "rate"
    assert "must be between 1 and 1,000,000" in error.message


def test_to_json_gives_normalised_values_and_the_scope_size() -> None:
    params = validate(
        {
            "targets": "127.0.0.5/24\nHOST.example. 127.0.1.1 - 20",
            "excludes": ["127.0.0.128/25"],
            "tcp_ports": "8000-8100, 443 22,80 80",
            "probes": "tls banner",
            "rate": "200",
        }
    )
    assert params.to_json() == {
        "targets": "127.0.0.0/24,host.example,127.0.1.1-20",
        "excludes": "127.0.0.1,127.0.0.128/25",
        "tcp_ports": "22,80,443,8000-8100",
        "rate": 200,
        "max_host_rate": DEFAULT_MAX_HOST_RATE,
        "max_sockets": DEFAULT_MAX_SOCKETS,
        "probes": ["banner", "tls"],
        "host_ping": True,
        "scope_size": 127 + 1 + 20,
        "ports_count": 104,
    }
    json.dumps(params.to_json())


def test_a_preset_is_recorded_as_the_ports_it_stood_for() -> None:
    assert validate({"tcp_ports": "top100"}).to_json()["tcp_ports"] == format_ports(TOP100)


def test_stored_params_validate_back_to_the_same_scan() -> None:
    params = validate({"targets": "127.0.0.0/30, h.example", "tcp_ports": "top100, 9000-9010"})
    again = validate(params.to_params())
    assert again == params
    assert set(params.to_params()) == set(SCAN_PARAM_KEYS)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)


@given(st.dictionaries(st.sampled_from([*SCAN_PARAM_KEYS, "other"]), json_values))
def test_any_json_params_either_validate_or_raise_a_scan_params_error(
    params: dict[str, object],
) -> None:
    try:
        result = validate(params)
    except ScanParamsError as error:
        field, message = error.field, error.message
    else:
        field, message = "", ""
        assert 1 <= result.scope_size <= 65536
        assert validate(result.to_params()) == result
    assert field in ["", *SCAN_PARAM_KEYS, "other"]
    assert bool(field) == bool(message)

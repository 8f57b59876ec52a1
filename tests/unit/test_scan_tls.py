"""Certificate facts: what a scanner reports about a TLS service's certificate."""

from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from hypothesis import given
from hypothesis import strategies as st

from surveyor.scan.probes.tls import certificate_facts
from tests.support.scan_services import make_certificate


def test_subject_issuer_names_validity_and_fingerprint_are_reported(tmp_path: Path) -> None:
    made = make_certificate(tmp_path, "router.example", "192.0.2.7")
    certificate = x509.load_pem_x509_certificate(made.cert_file.read_bytes())
    der = certificate.public_bytes(serialization.Encoding.DER)
    assert certificate_facts(der) == {
        "subject": "CN=router.example,O=Surveyor Tests",
        "issuer": "CN=router.example,O=Surveyor Tests",
        "sans": ["router.example", "192.0.2.7"],
        "not_before": "2025-01-01T00:00:00Z",
        "not_after": "2035-01-01T00:00:00Z",
        "sha256": hashlib.sha256(der).hexdigest(),
    }


def test_a_certificate_that_cannot_be_parsed_keeps_its_fingerprint() -> None:
    facts = certificate_facts(b"\x30\x03not a certificate")
    assert facts["sha256"] == hashlib.sha256(b"\x30\x03not a certificate").hexdigest()
    assert facts["subject"] is None
    assert facts["sans"] == []


def test_no_certificate_means_no_facts() -> None:
    assert certificate_facts(b"")["sha256"] is None


@given(st.binary(max_size=2000))
def test_any_bytes_never_raise(data: bytes) -> None:
    certificate_facts(data)

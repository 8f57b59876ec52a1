"""Certificates for the lab's TLS services, generated fresh for every lab.

A lab CA signs most of them; a plan may ask for a self-signed one instead. The facts a scanner
reports (subject, issuer, SANs, validity, SHA-256 fingerprint of the DER form) are returned with
the files, as ground truth.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from surveyor.testing.labplan import CertificatePlan
from surveyor.testing.servers import write_certificate

LAB_CA_NAME = "Surveyor Lab CA"
_VALIDITY = dt.timedelta(days=30)


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """A generated certificate: where its files are, and what a scanner should report."""

    cert_file: Path
    key_file: Path
    subject_cn: str
    issuer_cn: str
    subject: str  # RFC 4514, as `Name.rfc4514_string()` writes it
    issuer: str
    alt_names: tuple[str, ...]
    not_before: dt.datetime
    not_after: dt.datetime
    sha256: str  # lowercase hex of the SHA-256 of the DER certificate, no separators


@dataclass(frozen=True, slots=True)
class _Signer:
    name: x509.Name
    key: ec.EllipticCurvePrivateKey


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Surveyor Lab"),
        ]
    )


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


class LabCertificates:
    """Issues certificates into `directory`, signed by one CA made for this lab."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        ca_key = _new_key()
        self._ca = _Signer(name=_name(LAB_CA_NAME), key=ca_key)
        builder = self._builder(self._ca.name, self._ca, ca_key.public_key())
        constraints = x509.BasicConstraints(ca=True, path_length=0)
        builder = builder.add_extension(constraints, critical=True)
        self.ca_certificate = builder.sign(ca_key, hashes.SHA256())

    def issue(self, plan: CertificatePlan, file_stem: str) -> IssuedCertificate:
        """Generate the key and certificate `plan` describes and write them as PEM files."""
        key = _new_key()
        subject = _name(plan.common_name)
        signer = self._ca if plan.signed_by_lab_ca else _Signer(name=subject, key=key)
        builder = self._builder(subject, signer, key.public_key())
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(name) for name in plan.alt_names]),
            critical=False,
        )
        certificate = builder.sign(signer.key, hashes.SHA256())
        cert_file = self.directory / f"{file_stem}.crt"
        key_file = self.directory / f"{file_stem}.key"
        write_certificate(certificate, key, cert_file, key_file)
        return IssuedCertificate(
            cert_file=cert_file,
            key_file=key_file,
            subject_cn=plan.common_name,
            issuer_cn=LAB_CA_NAME if plan.signed_by_lab_ca else plan.common_name,
            subject=certificate.subject.rfc4514_string(),
            issuer=certificate.issuer.rfc4514_string(),
            alt_names=plan.alt_names,
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
            sha256=certificate.fingerprint(hashes.SHA256()).hex(),
        )

    def _builder(
        self, subject: x509.Name, signer: _Signer, public_key: ec.EllipticCurvePublicKey
    ) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(signer.name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(self._now - dt.timedelta(days=1))
            .not_valid_after(self._now + _VALIDITY)
        )

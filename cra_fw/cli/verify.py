"""`cra-fw verify`: check a signed update bundle or a file with a detached signature."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import click

from cra_fw.cli.common import EXIT_GATE, EXIT_OK, fail
from cra_fw.errors import CraFwError

EXIT_INVALID = EXIT_GATE  # anything but `valid`


@click.command("verify")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option(
    "--trust",
    "trust",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Trust anchor: PEM/DER CA certificate, public key (PEM, OpenSSH, minisign/signify), "
    "OpenPGP certificate or keyring (armored or binary), or U-Boot control DTB. Repeatable.",
)
@click.option(
    "--signature",
    type=click.Path(path_type=Path),
    default=None,
    help="Detached signature (default: BUNDLE.asc/.sig/.gpg (OpenPGP), .minisig, .sig or .p7s next to the file).",
)
@click.option(
    "--format",
    "fmt",
    default=None,
    type=click.Choice(
        [
            "fit",
            "rauc",
            "swupdate",
            "mender",
            "mcuboot",
            "esp-secure-boot",
            "nordic-dfu",
            "openpgp",
            "sigstore",
            "detached",
        ]
    ),
    help="Skip content detection and verify as this format.",
)
@click.option(
    "--trust-root",
    "trust_roots",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Sigstore trusted_root.json (or a sigstore --trust-config file) of a private instance "
    "(default: the public-good root sigstore-python ships). Repeatable.",
)
@click.option(
    "--certificate-identity",
    "identities",
    multiple=True,
    help="Sigstore keyless: the signer identity (certificate SAN) to accept. Repeatable.",
)
@click.option(
    "--certificate-oidc-issuer",
    "oidc_issuers",
    multiple=True,
    help="Sigstore keyless: the OIDC issuer that goes with each --certificate-identity.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON.")
def verify(
    bundle: Path,
    trust: tuple[Path, ...],
    signature: Path | None,
    fmt: str | None,
    trust_roots: tuple[Path, ...],
    identities: tuple[str, ...],
    oidc_issuers: tuple[str, ...],
    as_json: bool,
) -> None:
    """Verify BUNDLE (FIT, RAUC, SWUpdate, Mender, MCUboot, ESP secure boot, Nordic DFU,
    OpenPGP- or Sigstore-signed, or any file with a detached signature).

    Exit status 0 only when the verdict is `valid` and the signing key is not a
    publicly known one; 1 otherwise; 2 for unusable options or unreadable files.
    """
    from cra_fw.bundles import TrustStore, verify_bundle

    if oidc_issuers and len(oidc_issuers) != len(identities):
        fail("give one --certificate-oidc-issuer per --certificate-identity")
    try:
        store = TrustStore.load([*trust, *trust_roots])
        if trust_roots and len(store.sigstore_roots) < len(trust_roots):
            fail("--trust-root takes a Sigstore trusted_root.json")
        store.identities = list(zip(identities, oidc_issuers or [""] * len(identities), strict=True))
        result = verify_bundle(bundle, store, signature=signature, fmt=fmt)
    except CraFwError as exc:
        fail(str(exc))
    if as_json:
        payload = asdict(result)
        payload["verdict"] = result.verdict.value
        click.echo(json.dumps(payload, indent=2))
    else:
        _print_text(result)
    sys.exit(EXIT_OK if result.ok else EXIT_INVALID)


def _print_text(result) -> None:
    click.echo(f"{result.path}: {result.verdict.value} ({result.format})")
    click.echo(f"  reason:      {result.reason}")
    if result.known_key:
        click.echo(
            f"  KNOWN KEY:   signed with a publicly known key, as good as unsigned: {result.known_key_text}"
        )
    if not result.trusted:
        click.echo("  note:        no --trust given: nothing can be valid")
    for label, value in (
        ("signer", result.signer),
        ("key", result.key_fingerprint),
        ("algorithms", ", ".join(result.algorithms)),
        ("signed at", result.signed_at),
        (
            "cert valid",
            f"{result.cert_not_before} .. {result.cert_not_after}" if result.cert_not_before else "",
        ),
    ):
        if value:
            click.echo(f"  {label + ':':<12} {value}")
    for item in result.covered:
        click.echo(f"  covered:     {item}")
    for item in result.uncovered:
        click.echo(f"  NOT covered: {item}")
    for note in result.notes:
        click.echo(f"  note:        {note}")

"""`cra-fw verify`: check a signed update bundle or a file with a detached signature."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import click

from cra_fw.cli.common import echo, fail, path_option
from cra_fw.exitcodes import EXIT_GATE, EXIT_OK


@click.command("verify")
@click.argument("bundles", metavar="BUNDLE...", nargs=-1, required=True, type=click.Path(path_type=Path))
@path_option(
    "--trust",
    "Trust anchor: PEM/DER CA certificate, public key (PEM, OpenSSH, minisign/signify), "
    "OpenPGP certificate or keyring (armored or binary), or U-Boot control DTB. Repeatable.",
    multiple=True,
)
@path_option(
    "--signature",
    "Detached signature (default: BUNDLE.asc/.sig/.gpg (OpenPGP), .minisig, .sig or .p7s next to the file).",
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
@click.option(
    "--decrypt-key",
    "decrypt_keys",
    multiple=True,
    type=click.Path(path_type=Path),
    help="A recipient's private key and certificate (one PEM file) for bundles whose signature is "
    "encrypted (RAUC crypt bundles after `rauc encrypt`). Repeatable. Never a trust anchor.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the verdict as JSON (a list for several bundles)."
)
def verify(
    bundles: tuple[Path, ...],
    trust: tuple[Path, ...],
    signature: Path | None,
    fmt: str | None,
    trust_roots: tuple[Path, ...],
    identities: tuple[str, ...],
    oidc_issuers: tuple[str, ...],
    decrypt_keys: tuple[Path, ...],
    as_json: bool,
) -> None:
    """Verify BUNDLE (FIT, RAUC, SWUpdate, Mender, MCUboot, ESP secure boot, Nordic DFU,
    OpenPGP- or Sigstore-signed, or any file with a detached signature).

    Several bundles give one verdict each.  Exit status 0 only when every verdict
    is `valid` and no signing key is a publicly known one; 1 otherwise (also
    `unsupported_format`: a file no verifier knows is not known to be signed);
    2 for unusable options or unreadable files.
    """
    from cra_fw.bundles import TrustStore, verify_bundle

    if oidc_issuers and len(oidc_issuers) != len(identities):
        fail("give one --certificate-oidc-issuer per --certificate-identity")
    if signature is not None and len(bundles) > 1:
        fail("--signature names the signature of one bundle: verify the bundles one at a time")
    store = TrustStore.load([*trust, *trust_roots])
    if trust_roots and len(store.sigstore_roots) < len(trust_roots):
        fail("--trust-root takes a Sigstore trusted_root.json")
    store.identities = list(zip(identities, oidc_issuers or [""] * len(identities), strict=True))
    for path in decrypt_keys:
        store.add_recipient(path)
    results = [verify_bundle(bundle, store, signature=signature, fmt=fmt) for bundle in bundles]
    if as_json:
        payloads = [asdict(r) | {"verdict": r.verdict.value} for r in results]
        echo(json.dumps(payloads[0] if len(payloads) == 1 else payloads, indent=2))
    else:
        for result in results:
            _print_text(result)
    sys.exit(EXIT_OK if all(r.ok for r in results) else EXIT_GATE)


def _print_text(result) -> None:
    echo(f"{result.path}: {result.verdict.value} ({result.format})")
    echo(f"  reason:      {result.reason}")
    if result.known_key:
        echo(f"  KNOWN KEY:   signed with a publicly known key, as good as unsigned: {result.known_key_text}")
    if not result.trusted:
        echo("  note:        no --trust given: nothing can be valid")
    for label, value in (
        ("sha256", result.sha256),
        ("signer", result.signer),
        ("key", result.key_fingerprint),
        ("anchor", result.anchor),
        ("algorithms", ", ".join(result.algorithms)),
        ("signed at", result.signed_at),
        (
            "cert valid",
            f"{result.cert_not_before} .. {result.cert_not_after}" if result.cert_not_before else "",
        ),
    ):
        if value:
            echo(f"  {label + ':':<12} {value}")
    for item in result.covered:
        echo(f"  covered:     {item}")
    for item in result.uncovered:
        echo(f"  NOT covered: {item}")
    for note in result.notes:
        echo(f"  note:        {note}")

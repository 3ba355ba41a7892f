"""`cra-fw sign`, `cra-fw verify-evidence` and `cra-fw pack`."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from cra_fw.cli.common import echo, fail, path_option
from cra_fw.errors import CraFwError
from cra_fw.exitcodes import EXIT_GATE, EXIT_OK, EXIT_USAGE


def _password(env_name: str | None) -> bytes | None:
    if not env_name:
        return None
    value = os.environ.get(env_name)
    if value is None:
        fail(f"--password-env {env_name}: that environment variable is not set")
    return value.encode("utf-8")


@click.command("sign")
@click.argument("target", metavar="FILE|PACK", type=click.Path(path_type=Path))
@click.option(
    "--key",
    "key_path",
    required=True,
    type=click.Path(path_type=Path),
    help="native: private key (PEM, DER or OpenSSH: Ed25519, ECDSA P-256, RSA >= 2048); "
    "openpgp: OpenPGP secret key (gpg --export-secret-keys --armor); sigstore: ECDSA P-256 PEM key.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["native", "openpgp", "sigstore"]),
    default="native",
    show_default=True,
    help="native: cra-fw's FILE.sig; openpgp: FILE.asc for gpgv/sqv; sigstore: FILE.sigstore.json "
    "(bundle v0.3) for sigstore verifiers, against the private trust root --write-trust-root writes.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="Signature file (default: FILE.sig, FILE.asc or FILE.sigstore.json).",
)
@click.option(
    "--password-env",
    metavar="VAR",
    default=None,
    help="Read the key's password from this environment variable.",
)
@click.option(
    "--identity", default=None, help="sigstore: the signer identity in the certificate (e-mail or URI)."
)
@click.option("--issuer", default=None, help="sigstore: the OIDC issuer recorded in the certificate.")
@click.option(
    "--tlog",
    type=click.Path(path_type=Path),
    default=None,
    help="sigstore: append to this local log file (default: a one-entry log per signature).",
)
@click.option(
    "--write-trust-root",
    type=click.Path(path_type=Path),
    default=None,
    help="sigstore: also write the trusted_root.json verifiers need for this key.",
)
def sign(
    target: Path,
    key_path: Path,
    fmt: str,
    output: Path | None,
    password_env: str | None,
    identity: str | None,
    issuer: str | None,
    tlog: Path | None,
    write_trust_root: Path | None,
) -> None:
    """Write a detached signature of FILE (or of an evidence pack and its manifest)."""
    from cra_fw.evidence import sigstore as sigstore_fmt
    from cra_fw.evidence.sign import fingerprint, load_private_key, sign_file, sign_openpgp

    if fmt != "sigstore" and (identity or issuer or tlog or write_trust_root):
        fail("--identity, --issuer, --tlog and --write-trust-root go with --format sigstore")
    password = _password(password_env)
    if fmt == "openpgp":
        out = sign_openpgp(target, key_path, password.decode() if password else None, output)
        signer = "OpenPGP key " + str(key_path)
    else:
        key = load_private_key(key_path, password)
        signer = f"key {fingerprint(key)}"
        if fmt == "native":
            out = sign_file(target, key, output)
        else:
            out = sigstore_fmt.sign_sigstore(
                target,
                key,  # type: ignore[arg-type] - checked to be P-256 inside
                output,
                identity=identity or sigstore_fmt.DEFAULT_IDENTITY,
                issuer=issuer or sigstore_fmt.DEFAULT_ISSUER,
                tlog=tlog,
            )
            if write_trust_root:
                root = sigstore_fmt.write_trusted_root(key, write_trust_root)  # type: ignore[arg-type]
                echo(f"trusted root for this key -> {root}")
    echo(f"signed {target} -> {out} ({fmt}, {signer})")
    sys.exit(EXIT_OK)


@click.command("verify-evidence")
@click.argument("pack", metavar="PACK|FILE", type=click.Path(path_type=Path))
@path_option(
    "--trust",
    "Trusted public key, certificate or private key of the signer; for OpenPGP signatures the "
    "signer's OpenPGP certificate, for Sigstore bundles the trusted_root.json (repeatable).",
    multiple=True,
    required=True,
)
@path_option("--signature", "Signature file (default: PACK.sig, else PACK.asc or PACK.sigstore.json).")
@path_option("--image", "Also check that this image is the one the pack's manifest names.")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
def verify_evidence_cmd(
    pack: Path, trust: tuple[Path, ...], signature: Path | None, image: Path | None, as_json: bool
) -> None:
    """Check PACK's signature against trusted keys and every hash in its manifest.

    Exit status: 0 verified, 1 not verified, 2 usage error (unreadable trust key).
    """
    from cra_fw.evidence.verify import verify_evidence

    result = verify_evidence(pack, list(trust), signature, image)
    if as_json:
        echo(
            json.dumps(
                {
                    "path": str(result.path),
                    "verified": result.ok,
                    "kind": result.kind,
                    "signer": result.signer,
                    "checks": [{"name": c.name, "ok": c.ok, "message": c.message} for c in result.checks],
                    "image": (result.manifest or {}).get("image"),
                },
                indent=2,
            )
        )
    else:
        echo(result.text())
    sys.exit(EXIT_OK if result.ok else EXIT_GATE)


@click.command("pack")
@click.argument("outdir", type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--key",
    "key_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Also sign the pack with this private key.",
)
@click.option(
    "--password-env", metavar="VAR", default=None, help="Environment variable holding the key password."
)
@click.option(
    "--db",
    "db_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Feed database whose feed ages go into the manifest (default: the usual one).",
)
def pack(outdir: Path, key_path: Path | None, password_env: str | None, db_path: Path | None) -> None:
    """Write OUTDIR/evidence.zip from the outputs of an earlier `cra-fw scan -o OUTDIR`."""
    from cra_fw.evidence.pack import feed_ages_from_db, write_pack
    from cra_fw.evidence.sign import load_private_key, sign_file

    path = write_pack(outdir, feed_ages=feed_ages_from_db(db_path))
    echo(f"wrote {path}")
    if key_path:
        sig = sign_file(path, load_private_key(key_path, _password(password_env)))
        echo(f"signed -> {sig}")
    sys.exit(EXIT_OK)


# ---- for `cra-fw scan`: the gate options and what happens after the scan --------------------


def gate_options(func):  # noqa: ANN001, ANN201 - a click decorator
    """Add --fail-on, --fail-on-vuln, --junit and --pack to a scan command."""
    options = [
        click.option(
            "--fail-on",
            type=click.Choice(["critical", "high", "medium", "low"], case_sensitive=False),
            default=None,
            help="Exit 1 when an unsuppressed finding has this severity or higher.",
        ),
        click.option(
            "--fail-on-vuln",
            multiple=True,
            metavar="critical|high|medium|low|kev",
            help="Exit 1 on an open vulnerability of this severity or higher (KEV always counts), "
            "or with 'kev' on any KEV-listed one; repeatable or comma-separated.",
        ),
        click.option(
            "--junit",
            type=click.Path(path_type=Path),
            default=None,
            help="Write a JUnit XML report of the gate for CI.",
        ),
        click.option("--pack", is_flag=True, help="Also write OUTDIR/evidence.zip (outputs + manifest)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def check_gate_values(fail_on_vuln: tuple[str, ...]) -> tuple[str, ...]:
    """Validate --fail-on-vuln before the scan runs (a usage error is exit 2, not a late surprise)."""
    from cra_fw.gate import GateError, parse_fail_on_vuln

    try:
        return parse_fail_on_vuln(fail_on_vuln)
    except GateError as exc:
        raise click.BadParameter(str(exc), param_hint="--fail-on-vuln") from exc


def finish_scan(
    report,
    outdir: Path,
    *,
    fail_on: str | None = None,  # noqa: ANN001 - ScanReport
    fail_on_vuln: tuple[str, ...] = (),
    junit: Path | None = None,
    pack: bool = False,
    db_path: Path | None = None,
) -> int:
    """After ``pipeline.scan``: JUnit, evidence pack, gate lines on stderr; returns the exit status."""
    from cra_fw.evidence.pack import feed_ages_from_db, write_pack
    from cra_fw.gate import evaluate, write_junit

    result = evaluate(report, fail_on=fail_on, fail_on_vuln=fail_on_vuln)
    if junit:
        write_junit(report, result, junit)
    if pack:
        extra = [junit] if junit and _inside(junit, outdir) else []
        try:
            path = write_pack(outdir, report, feed_ages=feed_ages_from_db(db_path), extra=extra)
            echo(f"evidence pack: {path}", err=True)
        except CraFwError as exc:
            echo(f"cra-fw: error: {exc}", err=True)
            return EXIT_USAGE
    if fail_on or fail_on_vuln:
        echo(result.summary(), err=True)
    return result.exit_status


def _inside(path: Path, folder: Path) -> bool:
    try:
        Path(path).resolve().relative_to(Path(folder).resolve())
    except ValueError:
        return False
    return True

"""The evidence pack: outputs + manifest in evidence.zip, detached signatures, verification."""

from cra_fw.evidence.pack import PACK_NAME, PackError, feed_ages_from_db, write_pack
from cra_fw.evidence.sign import EvidenceError, KeyFileError, SignatureFileError, sign_file
from cra_fw.evidence.verify import VerifyResult, verify_evidence

__all__ = [
    "PACK_NAME",
    "EvidenceError",
    "KeyFileError",
    "PackError",
    "SignatureFileError",
    "VerifyResult",
    "feed_ages_from_db",
    "sign_file",
    "verify_evidence",
    "write_pack",
]

"""Run Debian's binwalk (2.3.x) on one file and print its results as JSON.

Executed as a script by the system interpreter that has the ``binwalk``
module (``/usr/bin/python3``), never imported by cra-fw itself.
Usage: binwalk_driver.py FILE OUTDIR
"""

import json
import sys


def main() -> int:
    import binwalk

    path, outdir = sys.argv[1], sys.argv[2]
    modules = binwalk.scan(path, "--run-as=root", signature=True, extract=True, quiet=True, directory=outdir)
    results = []
    for module in modules:
        output = module.extractor.output.get(path) if module.extractor else None
        for r in module.results:
            if r.file.path != path:
                continue
            extracted = []
            if output is not None and r.offset in output.extracted:
                extracted = list(output.extracted[r.offset].files)
            carved = output.carved.get(r.offset, "") if output is not None else ""
            results.append(
                {
                    "offset": r.offset,
                    "size": r.size,
                    "description": r.description,
                    "valid": r.valid,
                    "extracted": extracted,
                    "carved": carved,
                }
            )
    # binwalk catches its own exceptions (a RecursionError in its walker, a crashed plugin) and
    # goes on with what it has: a failed module must fail the run, not look like "nothing found"
    errors = [e for module in modules for e in getattr(module, "errors", []) if getattr(e, "exception", None)]
    if errors:
        exc = errors[0].exception
        sys.stderr.write(f"binwalk {type(exc).__name__}: {exc}"[:500] + "\n")
        return 2
    json.dump(results, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())

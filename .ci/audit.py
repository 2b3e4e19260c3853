"""Known-vulnerability audit of the locked dependencies (`make audit`).

Every package pinned in uv.lock (all dependency groups) is checked with pip-audit, first against
the PyPI vulnerability data, then against OSV when PyPI could not answer for some packages.

Exit status: 0 when no known vulnerability was found; 1 when one was (the finding is printed);
0 with an "AUDIT DEGRADED" message when no vulnerability service could be reached in time, so
nothing could be checked; that is a failure instead (status 3) with CATALOG_AUDIT_REQUIRED=1.
Every step is bounded in time (CATALOG_AUDIT_TIMEOUT seconds per service, 10 s per request).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

# ruff: noqa: S603, S607 - fixed commands (uv, this interpreter's pip-audit), no shell

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = float(os.environ.get("CATALOG_AUDIT_TIMEOUT", "240"))
REQUIRED = os.environ.get("CATALOG_AUDIT_REQUIRED") == "1"

# Known vulnerabilities accepted for now: {id: reason}. Each needs a reason and an issue.
IGNORED: dict[str, str] = {}


def export_lock(target: Path) -> None:
    subprocess.run(
        [
            "uv", "export", "--frozen", "--all-groups", "--no-emit-project", "--no-hashes",
            "--format", "requirements.txt", "--quiet", "--output-file", str(target),
        ],
        cwd=ROOT,
        check=True,
        timeout=120,
    )  # fmt: skip


def audit(requirements: Path, service: str) -> tuple[list[dict[str, Any]] | None, str]:
    """The audited dependencies (None when the service could not be used) and a note."""
    command = [
        sys.executable, "-m", "pip_audit", "--requirement", str(requirements),
        "--disable-pip", "--no-deps", "--vulnerability-service", service,
        "--format", "json", "--progress-spinner", "off", "--timeout", "10",
        *[arg for vuln in IGNORED for arg in ("--ignore-vuln", vuln)],
    ]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return None, f"{service}: no answer within {TIMEOUT:.0f} s"
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return None, f"{service}: pip-audit failed (exit {done.returncode}): {last[:300]}"
    dependencies: list[dict[str, Any]] = report.get("dependencies", [])
    skipped = sum("skip_reason" in dep for dep in dependencies)
    return dependencies, f"{service}: {len(dependencies) - skipped} answered, {skipped} unknown"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        requirements = Path(tmp) / "requirements.txt"
        export_lock(requirements)
        pinned = sorted(
            {
                line.split("==")[0].strip().lower()
                for line in requirements.read_text().splitlines()
                if "==" in line and not line.lstrip().startswith("#")
            }
        )
        results: dict[str, dict[str, Any]] = {}
        notes = []
        for service in ("pypi", "osv"):
            dependencies, note = audit(requirements, service)
            notes.append(note)
            if dependencies is None:
                continue
            for dep in dependencies:
                name = dep["name"].lower()
                if "skip_reason" not in dep:
                    results[name] = dep
            if len(results) == len(pinned):
                break

    vulnerable = [dep for dep in results.values() if dep.get("vulns")]
    for dep in vulnerable:
        for vuln in dep["vulns"]:
            fixed = ", ".join(vuln.get("fix_versions") or []) or "no fixed version yet"
            print(f"VULNERABLE {dep['name']} {dep['version']}: {vuln['id']} (fixed in {fixed})")
    missing = sorted(set(pinned) - set(results))
    print(
        f"audited {len(results)} of {len(pinned)} locked packages "
        f"({'; '.join(notes)}); {len(vulnerable)} with a known vulnerability"
    )
    for vuln, reason in IGNORED.items():
        print(f"ignored {vuln}: {reason}")
    if vulnerable:
        return 1
    if missing:
        print(
            "AUDIT DEGRADED: no vulnerability service answered for "
            f"{len(missing)} packages ({', '.join(missing[:8])}{', ...' * (len(missing) > 8)})."
            " The PyPI per-version JSON API and OSV must be reachable for a complete audit."
        )
        return 3 if REQUIRED else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())

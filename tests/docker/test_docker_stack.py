"""The Docker setup built and run for real: docker/compose.yaml with podman-compose and podman.

Both images are built from docker/ (the Dockerfiles users build) and the three services run as
compose wires them: the same compose file, run by podman-compose with an override file. Every
`docker compose ...` line of docker/README.md that this test uses is run as written, by bash,
with `docker compose` standing for podman-compose (and `docker` for podman). Calls are placed
through the containerised Asterisk over AMI (tests/e2e/bed.py's Ami and Call) and through the
README's own `asterisk -rx "channel originate ..."` lines.

Compose features covered: build (context, dockerfile), image, a YAML anchor merged into two
services, network_mode: host, environment with ${VAR:-default} interpolation, named volumes
(kept by `down`), depends_on, command,
pull_policy, a service's healthcheck and the image's HEALTHCHECK, and the exec, logs, stop,
start, down and up commands.
restart: unless-stopped is covered for a server process that exits. Not covered: the health
checks' schedule (podman runs them from systemd timers and these machines have no systemd: the
test runs each check with `podman healthcheck run`), and Docker's own engine.

What the test adds through its override file and environment, so that it never collides with
anything else on the machine (a user's stack, a parallel run): per-run image names, Asterisk's
manager.conf with a free AMI port and a random secret, and free ports in CALLSCREEN_PORT,
CALLSCREEN_METRICS_PORT and CALLSCREEN_WEB_PORT (compose's documented variables). The build
gets podman's settings for these machines and this machine's CA bundle for pip, mounted at build
time (docker/README.md, "Testing": an empty mount point, /root/.config/pip, is all it leaves).

Needs root, podman and the base images (`make container-bases`); skips without them unless
CALLSCREEN_E2E_REQUIRED=1 (CI), then fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.bed import Ami, Call, ami_login_ok, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
COMPOSE = DOCKER / "compose.yaml"
README = DOCKER / "README.md"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
PROJECT_PREFIX = "callscreen-test-"
# podman's settings on these machines (../shared/TOOLS-FACTS.md, docker/README.md "Testing").
PODMAN = ["podman", "--runtime", "runc"]
ULIMITS = "--ulimit nofile=1024:1024 --ulimit nproc=1024:1024"
# What the README calls "small"; the measured sizes are in docker/README.md.
MAX_SIZE_MB = {"callscreen": 250, "asterisk": 450}
# The LABEL of docker/callscreen/Dockerfile's build stage (tests/docker/test_docker_files.py).
BUILD_STAGE_LABEL = "callscreen.stage=build"


# --- what docker/README.md says --------------------------------------------------------------


def readme_lines() -> list[str]:
    """The command lines of the README's ```sh blocks, trailing comments dropped."""
    out, inside = [], False
    for raw in README.read_text().splitlines():
        line = raw.strip()
        if line.startswith("```"):
            inside = line == "```sh"
            continue
        if inside and line and not line.startswith("#"):
            out.append(line.split("  #")[0].strip())
    return out


def readme_line(pattern: str) -> str:
    """The one README command line matching pattern (a regular expression, from the start)."""
    found = [line for line in readme_lines() if re.match(pattern, line)]
    assert len(found) == 1, f"docker/README.md: {len(found)} lines match {pattern!r}: {found}"
    return found[0]


def from_images() -> list[str]:
    """The images the Dockerfiles start FROM (what `make container-bases` provides)."""
    out = []
    for dockerfile in sorted(DOCKER.glob("*/Dockerfile")):
        out += re.findall(r"^FROM\s+(\S+)", dockerfile.read_text(), re.M)
    return out


def unavailable_reason() -> str | None:
    hint = "run `make container-bases` as root (installs podman, builds the base images)"
    if os.geteuid() != 0:
        return f"podman runs as root here; {hint}"
    if shutil.which("podman") is None:
        return f"no podman; {hint}"
    if podman_compose() is None:
        return "no podman-compose: it comes with the `dev` extra (pip install -e '.[dev]')"
    for image in from_images():
        exists = subprocess.run([*PODMAN, "image", "exists", image], capture_output=True)
        if exists.returncode != 0:
            return f"podman has no {image} (the FROM of a Dockerfile); {hint}"
    return None


def podman_compose() -> str | None:
    beside = Path(sys.executable).parent / "podman-compose"
    return str(beside) if beside.exists() else shutil.which("podman-compose")


# --- the stack -------------------------------------------------------------------------------


@dataclass
class Stack:
    """One run of docker/compose.yaml under its own project name."""

    project: str
    workdir: Path
    env: dict[str, str]
    compose_argv: list[str]
    ami_port: int
    ami_user: str
    ami_secret: str
    images: dict[str, str]  # service -> this run's image name
    timings: dict[str, float] = field(default_factory=dict)
    ran: set[str] = field(default_factory=set)  # every command line run through sh()

    def sh(self, line: str, *, cwd: Path = DOCKER, timeout: float = 300) -> str:
        """Run a README line as a user types it: bash, `docker compose` = podman-compose."""
        function = (
            'docker() { if [ "$1" = compose ]; then shift; '
            + shlex.join(self.compose_argv)
            + ' "$@"; else '
            + shlex.join(PODMAN)
            + ' "$@"; fi; }\n'
        )
        res = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", function + line],
            cwd=cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        self.ran.update(line.splitlines())
        log = self.workdir / "commands.log"
        with log.open("a") as f:
            f.write(f"$ {line}\n[{res.returncode}]\n{res.stdout}\n{res.stderr}\n")
        assert res.returncode == 0, f"{line}\nexit {res.returncode}\n{res.stdout}\n{res.stderr}"
        return res.stdout

    def cli(self, *args: str) -> str:
        """The callscreen CLI in the callscreen container (like the README's exec lines)."""
        return self.sh("docker compose exec -T callscreen callscreen " + shlex.join(args))

    def container(self, service: str) -> str:
        out = subprocess.run(
            [
                *PODMAN,
                "ps",
                "--filter",
                f"label=io.podman.compose.project={self.project}",
                "--filter",
                f"label=com.docker.compose.service={service}",
                "--format",
                "{{.Names}}",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert len(out) == 1, f"{service}: running containers {out}"
        return out[0]

    def podman(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*PODMAN, *args], capture_output=True, text=True, check=check, timeout=120
        )

    def healthy(self, service: str) -> bool:
        return (
            self.podman("healthcheck", "run", self.container(service), check=False).returncode == 0
        )

    def wait_ready(self, within: float = 90.0) -> None:
        """Asterisk fully booted with AMI open, both callscreen services healthy."""
        deadline = time.monotonic() + within
        waiting = ["asterisk", "callscreen", "web"]
        while waiting:
            service = waiting[0]
            with contextlib.suppress(AssertionError, subprocess.SubprocessError):
                if service == "asterisk":
                    booted = self.podman(
                        "exec", self.container("asterisk"),
                        "asterisk", "-rx", "core waitfullybooted", check=False,
                    )  # fmt: skip
                    ready = booted.returncode == 0 and ami_login_ok(
                        self.ami_port, self.ami_user, self.ami_secret
                    )
                else:
                    ready = self.healthy(service)
                if ready:
                    waiting.pop(0)
                    continue
            if time.monotonic() > deadline:
                logs = self.sh("docker compose logs 2>&1 | tail -40")
                raise AssertionError(f"{service} not ready after {within}s\n{logs}")
            time.sleep(0.3)

    def save_logs(self) -> None:
        with contextlib.suppress(Exception):
            res = subprocess.run(
                [*self.compose_argv, "logs"], cwd=DOCKER, env=self.env,
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            (self.workdir / "compose-logs.txt").write_text(res.stdout + res.stderr)


def sweep_stale_projects() -> None:
    """Remove the containers and volumes of earlier test runs whose pytest was killed before
    its cleanup (the project name carries the pid)."""
    out = subprocess.run(
        [*PODMAN, "ps", "-a", "--format", '{{index .Labels "io.podman.compose.project"}}'],
        capture_output=True,
        text=True,
    ).stdout.split()
    for project in set(out):
        m = re.fullmatch(re.escape(PROJECT_PREFIX) + r"(\d+)-[0-9a-f]+", project)
        if m and not Path(f"/proc/{m.group(1)}").exists():
            for kind in ("container", "volume"):
                ids = subprocess.run(
                    [*PODMAN, kind, "ls", "-aq" if kind == "container" else "-q",
                     "--filter", f"label=io.podman.compose.project={project}"],
                    capture_output=True, text=True,
                ).stdout.split()  # fmt: skip
                if ids:
                    subprocess.run([*PODMAN, kind, "rm", "-f", *ids], capture_output=True)


def image_id(name: str) -> str | None:
    res = subprocess.run(
        [*PODMAN, "image", "inspect", "--format", "{{.Id}}", name], capture_output=True, text=True
    )
    return res.stdout.strip() if res.returncode == 0 else None


def keep_as_cache(*images: str) -> None:
    """This run's images become the build cache of the next run (their layers are what an
    unchanged Dockerfile and context reuse), under a fixed name: the run's own names go, and
    the cache of the run before, when different, is removed with the layers only it used. So
    test runs keep one image of each kind, not one per run."""
    for image in images:
        new = image_id(image)
        cache = re.sub(r"-\d+-[0-9a-f]+$", "-cache", image)
        old = image_id(cache)
        if new is not None:
            subprocess.run([*PODMAN, "tag", new, cache], capture_output=True)
            # (`podman untag IMAGE` alone would remove every name, the cache's too.)
            subprocess.run([*PODMAN, "untag", new, image], capture_output=True)
        if old is not None and old != new:
            # Refused (and left alone) while a parallel run still uses it.
            subprocess.run([*PODMAN, "rmi", old], capture_output=True)


def keep_one_build_stage() -> None:
    """docker/callscreen/Dockerfile's build stage (the compiler, Python's headers, the compiled
    virtualenv) stays behind as an image without a name (podman keeps it as the next build's
    cache): keep the newest, not one per run. Only unnamed images with the stage's label."""
    found = subprocess.run(
        [*PODMAN, "images", "-q", "--no-trunc", "--filter", "dangling=true",
         "--filter", f"label={BUILD_STAGE_LABEL}"],
        capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    created = {}
    for image in set(found):
        res = subprocess.run(
            [*PODMAN, "image", "inspect", "--format", "{{.Created.UnixNano}}", image],
            capture_output=True,
            text=True,
        )
        if res.returncode == 0:
            created[image] = int(res.stdout.strip())
    for image in sorted(created, key=created.__getitem__)[:-1]:
        # Refused (and left alone) while a parallel build still uses it.
        subprocess.run([*PODMAN, "rmi", image], capture_output=True)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    reason = unavailable_reason()
    if reason is not None:
        if os.environ.get("CALLSCREEN_E2E_REQUIRED") == "1":
            pytest.fail(f"CALLSCREEN_E2E_REQUIRED=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    sweep_stale_projects()
    run = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    project = PROJECT_PREFIX + run
    workdir = tmp_path_factory.mktemp("docker")
    ami_port, ami_user, ami_secret = free_port(), "callscreen-test", uuid.uuid4().hex
    # Asterisk's AMI for the test: the sample's file with a free port and a random login.
    sample = (DOCKER / "asterisk" / "etc" / "manager.conf").read_text()
    assert re.search(r"^bindaddr = 127\.0\.0\.1$", sample, re.M), "AMI must stay on loopback"
    manager = re.sub(r"^port = \d+$", f"port = {ami_port}", sample, flags=re.M)
    manager = manager.split("\n[admin]")[0]
    manager += f"\n[{ami_user}]\nsecret = {ami_secret}\nread = all\nwrite = all\n"
    (workdir / "manager.conf").write_text(manager)
    images = {
        "callscreen": f"callscreen-test-{run}",
        "web": f"callscreen-test-{run}",
        "asterisk": f"callscreen-asterisk-test-{run}",
    }
    override: dict[str, Any] = {"services": {s: {"image": i} for s, i in images.items()}}
    override["services"]["asterisk"]["volumes"] = [
        f"{workdir / 'manager.conf'}:/etc/asterisk/manager.conf:ro"
    ]
    (workdir / "override.yaml").write_text(json.dumps(override, indent=2))  # JSON is YAML
    # This machine's CA bundle for pip in the build (root's pip config dir, at build time only).
    pipdir = workdir / "pip"
    pipdir.mkdir()
    build_args = f"--format docker --network host {ULIMITS}"
    if CA_BUNDLE.is_file():
        shutil.copyfile(CA_BUNDLE, pipdir / "ca.crt")
        (pipdir / "pip.conf").write_text("[global]\ncert = /root/.config/pip/ca.crt\n")
        build_args += f" -v {pipdir}:/root/.config/pip:ro"
    compose_argv = [
        str(podman_compose()),
        "-p", project,
        "-f", str(COMPOSE),
        "-f", str(workdir / "override.yaml"),
        # argparse: an option value that starts with "--" needs the "=" form.
        "--podman-args=--runtime=runc",
        f"--podman-build-args={build_args}",
        f"--podman-run-args={ULIMITS}",
    ]  # fmt: skip
    env = {
        **os.environ,
        "CALLSCREEN_PORT": str(free_port()),
        "CALLSCREEN_METRICS_PORT": str(free_port()),
        "CALLSCREEN_WEB_PORT": str(free_port()),
        "ADMIN_PASSWORD": "pw-" + uuid.uuid4().hex,
    }
    st = Stack(project, workdir, env, compose_argv, ami_port, ami_user, ami_secret, images)
    try:
        # The README's first block, as written, from the repository root.
        start = readme_lines().index("cd docker")
        first = readme_lines()[start : start + 2]
        assert first[1] == "docker compose up --build -d", first
        began = time.monotonic()
        st.sh("\n".join(first), cwd=REPO, timeout=600)
        st.timings["up --build"] = time.monotonic() - began
        st.wait_ready()
        st.timings["up --build, until ready"] = time.monotonic() - began
        yield st
    finally:
        st.save_logs()
        subprocess.run(
            [*compose_argv, "down", "-v"], cwd=DOCKER, env=env, capture_output=True, timeout=120
        )
        keep_as_cache(images["callscreen"], images["asterisk"])
        keep_one_build_stage()
        (workdir / "timings.json").write_text(json.dumps(st.timings, indent=2))


@pytest.fixture
async def ami(stack: Stack) -> AsyncIterator[Ami]:
    session = Ami(stack)
    await session.connect()
    try:
        yield session
    finally:
        for call in session.calls.values():
            for uid, name in call.channels.items():
                if uid not in call.hungup:
                    await session.send({"Action": "Hangup", "Channel": name})
        await session.close()


async def call(ami: Ami, exten: str, number: str | None) -> Call:
    """A call into the sample's [inbound] context, as a phone line would deliver it."""
    callerid = f'"Test" <{number}>' if number else None
    return await ami.call(exten, callerid, context="inbound", within=25)


def listeners(port: int) -> list[str]:
    out = subprocess.run(
        ["ss", "-Htln", f"( sport = :{port} )"], capture_output=True, text=True, check=True
    ).stdout
    return [line.split()[3] for line in out.splitlines() if line.strip()]


# --- the tests, in the order a user goes ------------------------------------------------------


def test_images_are_small_non_root_healthchecked_and_listen_on_loopback(stack: Stack) -> None:
    for service, image in stack.images.items():
        size = int(stack.podman("image", "inspect", "--format", "{{.Size}}", image).stdout)
        stack.timings[f"size {service} MB"] = size / 1e6
        limit = MAX_SIZE_MB["asterisk" if service == "asterisk" else "callscreen"]
        assert size < limit * 1e6, f"{image}: {size / 1e6:.0f} MB"
    for service in ("callscreen", "web"):
        uid = stack.podman("exec", stack.container(service), "id", "-u").stdout.strip()
        assert uid != "0", f"{service} runs as root"
        # The database is in the volume.
        mounts = json.loads(
            stack.podman("inspect", "--format", "{{json .Mounts}}", stack.container(service)).stdout
        )
        assert any(m["Destination"] == "/data" and m["Type"] == "volume" for m in mounts), mounts
    (image,) = json.loads(stack.podman("image", "inspect", stack.images["callscreen"]).stdout)
    check = image.get("Healthcheck") or {}
    assert "/health" in " ".join(check.get("Test", [])), image
    # Host networking: the FastAGI port, /health, the portal and AMI are on loopback only.
    for variable in ("CALLSCREEN_PORT", "CALLSCREEN_METRICS_PORT", "CALLSCREEN_WEB_PORT"):
        port = int(stack.env[variable])
        assert listeners(port) == [f"127.0.0.1:{port}"], variable
    assert listeners(stack.ami_port) == [f"127.0.0.1:{stack.ami_port}"]


def test_the_call_path_is_compiled_and_the_image_has_no_compiler(stack: Stack) -> None:
    """Issue #16: the image runs the call path compiled by mypyc (setup.py; the Dockerfile's
    build stage), both services, and `serve` says so at start. The compiler stayed in the
    build stage."""
    for service in ("callscreen", "web"):
        name = stack.container(service)
        probe = "import callscreen; print(callscreen.compiled())"
        out = stack.podman("exec", name, "python3", "-c", probe).stdout
        assert out.strip() == "True", (service, out)
        cc = stack.podman("exec", name, "sh", "-c", "command -v gcc cc c99", check=False)
        assert cc.returncode != 0 and not cc.stdout.strip(), (service, cc.stdout)
    logs = stack.podman("logs", stack.container("callscreen"))
    assert "call path: compiled (mypyc)" in logs.stdout + logs.stderr, logs.stderr[-2000:]


def test_health_check_fails_when_the_server_is_not_serving(stack: Stack) -> None:
    """The HEALTHCHECK is not a check that cannot fail: pointed at a port nobody serves on, it
    fails (the container's environment is what the check reads)."""
    name = stack.container("callscreen")
    test = json.loads(
        stack.podman("inspect", "--format", "{{json .Config.Healthcheck.Test}}", name).stdout
    )
    assert test[0] == "CMD", test
    elsewhere = str(free_port())
    assert stack.podman("exec", name, *test[1:], check=False).returncode == 0
    broken = stack.podman(
        "exec", "-e", f"CALLSCREEN_METRICS_PORT={elsewhere}", name, *test[1:], check=False
    )
    assert broken.returncode != 0


async def test_readme_lines_screen_calls_through_the_containers(stack: Stack, ami: Ami) -> None:
    setup = readme_line("docker compose exec callscreen callscreen ext set ")
    block = readme_line("docker compose exec callscreen callscreen block add ")
    check = readme_line("docker compose exec callscreen callscreen check ")
    blocked_number = "+1" + re.sub(r"\D", "", block.split()[-1])
    stack.sh(setup)

    # Before the block: that caller gets through. The README's line applies to the next call.
    before = await call(ami, "101", blocked_number)
    assert before.result == "ALLOWED" and before.reason == "not-listed", before.summary()
    assert before.phone_rang("phones"), before.summary()
    stack.sh(block)
    assert "BLOCKED" in stack.sh(check).upper()
    after = await call(ami, "101", blocked_number)
    assert after.result == "BLOCKED" and after.reason == "ext-blocklist", after.summary()
    assert after.hangup_cause == 17 and not after.reached_dial, after.summary()

    # The README's own test calls, typed on the Asterisk CLI in the container.
    calls = []
    for line in [x for x in readme_lines() if x.startswith("docker compose exec asterisk ")]:
        m = re.search(r"channel originate (Local/\S+) application Wait \d+", line)
        assert m is not None, line
        expected = ami.expect_call(m.group(1) + "-", "101")
        out = stack.sh(line)
        assert "rror" not in out, out
        calls.append(await ami.finished(expected, within=25))
    blocked, allowed, anonymous = calls
    assert blocked.result == "BLOCKED" and blocked.hangup_cause == 17, blocked.summary()
    assert not blocked.reached_dial, blocked.summary()
    assert allowed.result == "ALLOWED" and allowed.phone_rang("phones"), allowed.summary()
    assert anonymous.result == "BLOCKED" and anonymous.reason == "anonymous", anonymous.summary()
    assert anonymous.hangup_cause == 17, anonymous.summary()

    # The README's log line shows them.
    logs = stack.sh(readme_line("docker compose logs callscreen"))
    assert "ext-blocklist" in logs and "anonymous" in logs, logs[-2000:]
    dialplan = re.sub(r"\x1b\[[0-9;]*m", "", stack.sh(readme_line("docker compose logs asterisk")))
    gosub = r'Executing \[101@inbound:\d+\] Gosub\("[^"]+", "callscreen,s,1\(101\)"\)'
    assert re.search(gosub, dialplan) and 'AGI("' in dialplan, dialplan[-2000:]


def test_portal_serves_the_same_database(stack: Stack) -> None:
    stack.sh(readme_line(r"printf .* \| docker compose exec -T callscreen callscreen user add "))
    web = f"http://127.0.0.1:{stack.env['CALLSCREEN_WEB_PORT']}"
    with httpx.Client(base_url=web, timeout=10) as client:
        page = client.get("/")
        assert page.status_code == 200 and "password" in page.text.lower(), page.text[:500]
        # Sign in with the README's user: the portal reads the server's database (the volume).
        login = client.post(
            "/login",
            data={"username": "admin", "password": stack.env["ADMIN_PASSWORD"]},
            headers={"Origin": web},
        )
        assert login.status_code == 303, (login.status_code, login.text[:500])
        assert client.cookies, "signed in without a session cookie"
        token = json.loads(stack.cli("token", "create", "admin", "--json"))["token"]
        got = client.get(
            "/api/v1/extensions/101/blocklist", headers={"Authorization": f"Bearer {token}"}
        )
        assert got.status_code == 200, got.text
        assert "+13035551212" in got.text, got.text
    assert stack.healthy("web")


async def test_server_stopped_calls_go_through(stack: Stack, ami: Ami) -> None:
    stack.sh(readme_line("docker compose stop callscreen"))
    assert stack.healthy("web"), "the portal stops with the server"
    unscreened = await call(ami, "101", "+13035551212")
    assert unscreened.result == "UNSCREENED", unscreened.summary()
    assert unscreened.reached_dial and unscreened.phone_rang("phones"), unscreened.summary()
    stack.sh(readme_line("docker compose start callscreen"))
    stack.wait_ready()
    screened = await call(ami, "101", "+13035551212")
    assert screened.result == "BLOCKED" and screened.hangup_cause == 17, screened.summary()


async def test_a_server_that_exits_is_restarted(stack: Stack, ami: Ami) -> None:
    """restart: unless-stopped: the server process ends (here: SIGTERM from inside, like a
    crash or an OOM kill would end it) and podman starts it again."""
    name = stack.container("callscreen")

    def restarts() -> int:
        return int(stack.podman("inspect", "--format", "{{.RestartCount}}", name).stdout)

    before = restarts()
    # The exec's own status is not the point (and not reliable): when PID 1 ends first, podman
    # tears the exec session down with the container and reports 255. The restart is checked.
    stack.podman(
        "exec", name, "python3", "-c", "import os, signal; os.kill(1, signal.SIGTERM)", check=False
    )
    deadline = time.monotonic() + 30
    while restarts() == before:
        assert time.monotonic() < deadline, "the callscreen container was not restarted"
        time.sleep(0.2)
    stack.wait_ready()
    screened = await call(ami, "101", "+13035551212")
    assert screened.result == "BLOCKED" and screened.hangup_cause == 17, screened.summary()


def _everything(stack: Stack) -> dict[str, Any]:
    return {
        "lists": stack.cli("export", "--all", "--format", "json"),
        "extensions": stack.cli("ext", "list", "--json"),
        "account": stack.cli("account", "show", "--json"),
        "users": stack.cli("user", "list", "--json"),
        "tokens": stack.cli("token", "list", "--json"),
    }


async def test_down_and_up_keep_every_list(stack: Stack) -> None:
    stack.cli("allow", "add", "--ext", "101", "303-555-0111", "--note", "doctor")
    stack.cli("block", "add", "--account", "+1900*", "--note", "premium")
    stack.cli("allow", "add", "--account", "720-555-0199")
    stack.cli("block", "add", "--ext", "102", "720-555-0123", "--for", "30d")
    before = _everything(stack)
    for number in ("+13035551212", "+13035550111", "+1900*", "+17205550199", "+17205550123"):
        assert number in before["lists"], (number, before["lists"])

    stack.sh(readme_line("docker compose down$"))
    assert not subprocess.run(
        [*PODMAN, "ps", "-q", "--filter", f"label=io.podman.compose.project={stack.project}"],
        capture_output=True, text=True, check=True,
    ).stdout.strip(), "down left containers running"  # fmt: skip
    stack.sh(readme_line("docker compose up -d$"))
    stack.wait_ready()

    assert _everything(stack) == before
    session = Ami(stack)
    await session.connect()
    try:
        blocked = await call(session, "101", "+13035551212")
        assert blocked.result == "BLOCKED" and blocked.hangup_cause == 17, blocked.summary()
        allowed = await call(session, "101", "+13035550111")
        assert allowed.result == "ALLOWED" and allowed.reason == "allowlist", allowed.summary()
    finally:
        await session.close()


def test_every_readme_command_line_was_run(stack: Stack) -> None:
    """docker/README.md says the test runs each of its command lines: keep that true (runs
    last: the tests above run them)."""
    assert set(readme_lines()) - stack.ran == set()

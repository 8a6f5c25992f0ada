"""The image recipe (deploy/docker/Dockerfile) parses, copies what exists, names entry
points that exist, and agrees with the chart and pyproject. It is not built here (no
Docker engine): these are the checks that need none."""

from __future__ import annotations

import json
import re
import shlex
import sys
from fnmatch import fnmatch

import yaml

from tests.deploy.chart import CHART_DIR, DOCKER_DIR, REPO_ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DOCKERFILE = DOCKER_DIR / "Dockerfile"
DOCKERIGNORE = DOCKER_DIR / "Dockerfile.dockerignore"
INSTRUCTIONS = {
    "FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
    "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
}  # fmt: skip


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order; continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, args = full.partition(" ")
        out.append((keyword.upper(), args.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return out


def pyproject() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def ray_pin() -> str:
    for requirement in pyproject()["project"]["dependencies"]:
        match = re.match(r"ray(\[[^\]]*\])?==([0-9.]+)$", requirement.replace(" ", ""))
        if match:
            return match.group(2)
    raise AssertionError("pyproject.toml pins no ray version")


def arg_defaults() -> dict[str, str]:
    defaults = {}
    for keyword, args in instructions():
        if keyword == "ARG" and "=" in args:
            name, _, value = args.partition("=")
            defaults[name] = value
    return defaults


def env_values() -> dict[str, str]:
    env = {}
    for keyword, args in instructions():
        if keyword == "ENV":
            for item in shlex.split(args):
                name, _, value = item.partition("=")
                env[name] = value
    return env


def test_parses_with_known_instructions() -> None:
    steps = instructions()
    assert {keyword for keyword, _ in steps} <= INSTRUCTIONS
    first = next(keyword for keyword, _ in steps if keyword != "ARG")
    assert first == "FROM"
    for keyword in ("CMD", "HEALTHCHECK", "USER", "EXPOSE"):
        assert keyword in {k for k, _ in steps}, keyword


def test_base_is_rays_image_of_the_pinned_version() -> None:
    (base,) = [args for keyword, args in instructions() if keyword == "FROM"]
    defaults = arg_defaults()
    image = re.sub(r"\$\{(\w+)\}", lambda m: defaults[m.group(1)], base.split()[0])
    assert image == f"rayproject/ray:{ray_pin()}-py311-cpu"
    # The chart runs the same Ray version.
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    assert values["ray"]["version"] == ray_pin()


def test_copy_sources_exist_and_pass_the_dockerignore() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        result = False
        for pattern in patterns:
            negate = pattern.startswith("!")
            bare = pattern.lstrip("!").rstrip("/")
            if fnmatch(path, bare) or path.startswith(bare + "/"):
                result = not negate
        return result

    copies = [args for keyword, args in instructions() if keyword == "COPY"]
    assert copies
    for args in copies:
        words = [w for w in shlex.split(args) if not w.startswith("--")]
        assert "--from" not in args
        for source in words[:-1]:
            assert (REPO_ROOT / source).exists(), f"COPY source {source} is not in the repository"
            assert not ignored(source), f"COPY source {source} is excluded by {DOCKERIGNORE.name}"
    copied = {w for args in copies for w in shlex.split(args)[:-1]}
    # What `pip install .` needs: the package folders setuptools finds, and the metadata.
    project = pyproject()
    includes = project["tool"]["setuptools"]["packages"]["find"]["include"]
    assert {pattern.rstrip("*") for pattern in includes} <= copied
    assert {"pyproject.toml", project["project"]["readme"]} <= copied


def test_installs_the_postgres_driver() -> None:
    (install,) = [a for k, a in instructions() if k == "RUN" and "pip install" in a]
    assert "[postgres]" in install
    assert "postgres" in pyproject()["project"]["optional-dependencies"]


def test_entrypoints_exist() -> None:
    (cmd,) = [args for keyword, args in instructions() if keyword == "CMD"]
    command = json.loads(cmd)  # exec form
    assert command == ["hpo", "serve"]
    scripts = pyproject()["project"]["scripts"]
    assert command[0] in scripts, "the image runs `hpo`, which pyproject.toml must declare"
    modules = [scripts["hpo"].split(":")[0], "service.runner"]
    missing = [
        module
        for module in modules
        if not (REPO_ROOT / (module.replace(".", "/") + ".py")).is_file()
        and not (REPO_ROOT / module.replace(".", "/") / "__init__.py").is_file()
    ]
    assert not missing, f"the image names modules that do not exist: {missing}"


def test_runs_as_numeric_non_root_user_matching_the_chart() -> None:
    users = [args for keyword, args in instructions() if keyword == "USER"]
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0, "the final USER must be a numeric non-root uid"
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    for context in (values["service"]["podSecurityContext"], values["ray"]["podSecurityContext"]):
        assert context["runAsUser"] == int(uid)
        assert context["runAsGroup"] == int(gid)


def test_settings_and_healthcheck_match_the_chart() -> None:
    env = env_values()
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    assert env["HPO_HOST"] == "0.0.0.0"
    assert env["HPO_PORT"] == str(values["service"]["containerPort"])
    assert env["HPO_HOME"] == "/var/lib/hpo"
    exposed = [args for keyword, args in instructions() if keyword == "EXPOSE"]
    assert exposed == [env["HPO_PORT"]]
    (check,) = [args for keyword, args in instructions() if keyword == "HEALTHCHECK"]
    probe = json.loads(check.split(" CMD ", 1)[1])  # exec form
    assert probe[:2] == ["python", "-c"]
    compile(probe[2], "HEALTHCHECK", "exec")
    assert "/healthz" in probe[2] and "HPO_PORT" in probe[2]
    # The image's writable home for HPO_HOME is owned by the runtime user.
    run = " ".join(a for k, a in instructions() if k == "RUN")
    assert "/var/lib/hpo" in run and "chown 1000:100" in run


def test_chart_app_version_is_the_package_version() -> None:
    chart = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    assert chart["appVersion"] == pyproject()["project"]["version"]

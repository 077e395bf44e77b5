"""The shipped deployment files parse and agree with the app: settings, ports, probe paths."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.config import Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
COMPOSE_GPU = REPO / "deploy" / "compose" / "gpu.yml"
K8S = REPO / "deploy" / "k8s"
DOCKERFILE = REPO / "Dockerfile"
REQUIREMENTS_SCRIPT = REPO / "deploy" / "docker" / "requirements.py"
# What only training, export and SavedModel serving need: never in the CPU API image.
TRAINING_ONLY = {"tensorflow", "keras", "matplotlib", "keras-tuner", "tf2onnx", "onnx"}
APP_PORT = 8000
SETTINGS_ENV = {f"TAGGER_{name.upper()}" for name in Settings.model_fields}


def _load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _k8s_docs() -> list[dict[str, Any]]:
    return [doc for path in sorted(K8S.rglob("*.yaml")) for doc in _load_all(path)]


def _by_kind(kind: str, directory: Path = K8S / "base") -> list[dict[str, Any]]:
    docs = [doc for path in sorted(directory.glob("*.yaml")) for doc in _load_all(path)]
    return [doc for doc in docs if doc.get("kind") == kind]


def _env_names(env: dict[str, Any] | list[Any] | None) -> set[str]:
    """Variable names from a compose `environment` (mapping or list) or a k8s `env` list."""
    if env is None:
        return set()
    if isinstance(env, dict):
        return set(env)
    return {item["name"] if isinstance(item, dict) else item.split("=", 1)[0] for item in env}


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    lines = [line for line in DOCKERFILE.read_text().splitlines() if not line.startswith("#")]
    joined = "\n".join(lines).replace("\\\n", "")
    pairs = []
    for line in joined.splitlines():
        if line.strip():
            instruction, _, arguments = line.strip().partition(" ")
            pairs.append((instruction.upper(), arguments.strip()))
    return pairs


def _dockerfile_stages() -> dict[str, list[tuple[str, str]]]:
    """Each build stage's instructions, by stage name, in file order (FROM line included)."""
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for instruction, arguments in _dockerfile_instructions():
        if instruction == "FROM":
            name = arguments.partition(" AS ")[2]
            current = stages[name.strip()] = []
        if current is not None:
            current.append((instruction, arguments))
    return stages


def _requirement_names(*extras: str) -> set[str]:
    """Project names the Docker build installs for `extras` (deploy/docker/requirements.py)."""
    listed = subprocess.run(
        [sys.executable, str(REQUIREMENTS_SCRIPT), *extras],
        input=(REPO / "pyproject.toml").read_text(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return {re.split(r"[\[<>=!~;]", line, maxsplit=1)[0].lower() for line in listed}


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return doc["spec"]["template"]["spec"]["containers"]


def test_every_yaml_file_parses() -> None:
    paths = [COMPOSE, COMPOSE_GPU, *sorted((REPO / "deploy").rglob("*.y*ml"))]
    for path in paths:
        assert _load_all(path), f"{path} is empty"
    kinds = {doc["kind"] for doc in _k8s_docs()}
    expected = {"Deployment", "Service", "HorizontalPodAutoscaler", "PersistentVolumeClaim"}
    assert expected | {"Job", "ConfigMap", "Kustomization"} <= kinds


def test_every_tagger_variable_is_a_setting() -> None:
    """A misspelt TAGGER_* variable would be silently ignored by the app: none may exist."""
    found: dict[str, set[str]] = {}
    for file in (COMPOSE, COMPOSE_GPU):
        for name, service in (yaml.safe_load(file.read_text()).get("services") or {}).items():
            found[f"{file.name}:{name}"] = _env_names(service.get("environment"))
    for doc in _k8s_docs():
        kind = doc.get("kind")
        if kind == "ConfigMap":
            found[f"ConfigMap {doc['metadata']['name']}"] = set(doc.get("data", {}))
        elif kind == "Kustomization":
            for generator in doc.get("configMapGenerator", []):
                literals = generator.get("literals", [])
                found[f"configMapGenerator {generator['name']}"] = _env_names(literals)
        elif kind in ("Deployment", "Job"):
            for container in _containers(doc):
                found[f"{kind} {container['name']}"] = _env_names(container.get("env"))
    found["Dockerfile"] = {
        match
        for instruction, arguments in _dockerfile_instructions()
        if instruction == "ENV"
        for match in re.findall(r"\b(TAGGER_[A-Z0-9_]+)=", arguments)
    }
    assert found["Dockerfile"] >= {"TAGGER_MODEL_STORE", "TAGGER_PORT"}
    assert "TAGGER_MAX_BATCH_SIZE" in found["ConfigMap cnn-tagger"]
    for where, names in found.items():
        unknown = {name for name in names if name.startswith("TAGGER_")} - SETTINGS_ENV
        assert not unknown, f"{where} sets {sorted(unknown)}, which app.config.Settings ignores"


@pytest.mark.parametrize("directory", ["base", "overlays/gpu"])
def test_configmap_values_are_accepted_by_the_app(
    directory: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Settings validates the shipped values (types, ranges, queue >= batch) as the pod would."""
    data = dict(_by_kind("ConfigMap")[0]["data"])
    overlay = K8S / directory / "kustomization.yaml"
    for generator in yaml.safe_load(overlay.read_text()).get("configMapGenerator", []):
        data.update(literal.split("=", 1) for literal in generator["literals"])
    for name in list(SETTINGS_ENV):
        monkeypatch.delenv(name, raising=False)
    for name, value in data.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.port == APP_PORT
    assert str(settings.model_store) == "/models"
    assert settings.max_queue >= settings.max_batch_size


def test_deployment_probes_ports_and_store_match_the_app() -> None:
    (deployment,) = _by_kind("Deployment")
    (container,) = _containers(deployment)
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http": APP_PORT}

    def probe(kind: str) -> tuple[str, int]:
        get = container[kind]["httpGet"]
        return get["path"], ports.get(get["port"], get["port"])

    assert probe("readinessProbe") == ("/readyz", APP_PORT)
    assert probe("livenessProbe") == ("/healthz", APP_PORT)
    assert probe("startupProbe") == ("/readyz", APP_PORT)

    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(APP_PORT)
    assert annotations["prometheus.io/path"] == "/metrics"

    (claim,) = _by_kind("PersistentVolumeClaim")
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/models"]["readOnly"] is True
    pvc = volumes[mounts["/models"]["name"]]["persistentVolumeClaim"]
    assert pvc == {"claimName": claim["metadata"]["name"], "readOnly": True}

    (service,) = _by_kind("Service")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"][0]["targetPort"] in ("http", APP_PORT)

    (hpa,) = _by_kind("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert container["resources"]["requests"]["cpu"], "CPU utilisation scaling needs a request"


def test_training_job_writes_the_same_store() -> None:
    (deployment,) = _by_kind("Deployment")
    (job,) = _by_kind("Job")
    (trainer,) = _containers(job)
    assert trainer["image"] == "cnn-tagger-trainer:cpu", "training needs the trainer image"
    assert _containers(deployment)[0]["image"] == "cnn-tagger:cpu"
    command = [*trainer["command"], *trainer["args"]]
    assert command[:4] == ["python", "-m", "training", "train"]
    assert command[command.index("--store") + 1] == "/models"
    (mount,) = trainer["volumeMounts"]
    assert mount["mountPath"] == "/models" and not mount.get("readOnly", False)
    claims = {
        doc["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"]
        for doc in (deployment, job)
    }
    assert len(claims) == 1


def test_multi_worker_training_job_gives_each_pod_its_tf_config() -> None:
    docs = _load_all(K8S / "optional" / "job-train-multiworker.yaml")
    (service,) = [doc for doc in docs if doc["kind"] == "Service"]
    (job,) = [doc for doc in docs if doc["kind"] == "Job"]
    spec, pod = job["spec"], job["spec"]["template"]["spec"]
    assert spec["completionMode"] == "Indexed" and spec["backoffLimit"] == 0
    assert (
        service["spec"]["clusterIP"] == "None" and pod["subdomain"] == service["metadata"]["name"]
    )
    assert service["spec"]["selector"] == {"batch.kubernetes.io/job-name": job["metadata"]["name"]}
    (trainer,) = pod["containers"]
    env = {item["name"]: item.get("value") for item in trainer["env"]}
    assert int(env["WORKERS"]) == spec["completions"] == spec["parallelism"]
    assert env["JOB_NAME"] == job["metadata"]["name"] and env["SERVICE"] == pod["subdomain"]
    assert trainer["ports"][0]["containerPort"] == int(env["PORT"])
    script = trainer["args"][0]
    assert "--distribute multi-worker" in script and "--store /models" in script
    # Run the pod's script with `exec python -m training train` swapped for printing TF_CONFIG.
    printing = script.replace("exec python -m training train", 'printf %s "$TF_CONFIG"; exit 0; :')
    for index in range(spec["completions"]):
        variables = {**env, "JOB_COMPLETION_INDEX": str(index), "TAGGER_MODEL_NAME": "m"}
        out = subprocess.run(
            ["sh", "-c", printing], env=variables, capture_output=True, text=True, check=True
        ).stdout
        config = json.loads(out)
        assert config["task"] == {"type": "worker", "index": index}
        assert config["cluster"]["worker"] == [
            f"{job['metadata']['name']}-{i}.{service['metadata']['name']}:2222"
            for i in range(spec["completions"])
        ]
    mounts = {mount["mountPath"] for mount in trainer["volumeMounts"]}
    claims = {
        v["persistentVolumeClaim"]["claimName"]
        for v in pod["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert {"/models", "/data", "/cache"} <= mounts and "cnn-tagger-models" in claims


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (kustomize) not installed")
def test_kustomize_builds_cpu_and_gpu_variants() -> None:
    def build(directory: str) -> list[dict[str, Any]]:
        out = subprocess.run(
            ["kubectl", "kustomize", str(K8S / directory)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return [doc for doc in yaml.safe_load_all(out) if doc]

    cpu, gpu = build("base"), build("overlays/gpu")
    for docs, tag in ((cpu, "cpu"), (gpu, "gpu")):
        workloads = [doc for doc in docs if doc["kind"] in ("Deployment", "Job")]
        assert len(workloads) == 2
        for doc in workloads:
            (container,) = _containers(doc)
            assert container["image"].endswith(f":{tag}")
            has_gpu = "nvidia.com/gpu" in container["resources"].get("limits", {})
            assert has_gpu == (tag == "gpu")


def test_compose_wires_trainer_api_prometheus_grafana() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert set(services) == {"trainer", "api", "prometheus", "grafana"}
    assert {"models", "prometheus-data"} <= set(compose["volumes"])

    trainer, api = services["trainer"], services["api"]
    assert (trainer["build"]["target"], api["build"]["target"]) == ("trainer", "api")
    assert trainer["image"] != api["image"], "the API image has no TensorFlow to train with"
    script = trainer["command"][-1]
    assert "python -m model_store" in script and "versions" in script
    assert "|| exec python -m training train --profile" in script
    assert api["depends_on"]["trainer"]["condition"] == "service_completed_successfully"
    assert [p.rsplit(":", 1)[1] for p in api["ports"]] == [str(APP_PORT)]
    assert "models:/models:ro" in api["volumes"] and "models:/models" in trainer["volumes"]
    health = " ".join(api["healthcheck"]["test"])
    assert f"127.0.0.1:{APP_PORT}/readyz" in health

    mounts = {v.split(":")[1]: REPO / v.split(":")[0] for v in services["prometheus"]["volumes"]}
    assert (mounts["/etc/prometheus"] / "prometheus.yml").is_file()
    prometheus = yaml.safe_load((mounts["/etc/prometheus"] / "prometheus.yml").read_text())
    (job,) = prometheus["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == [f"api:{APP_PORT}"]

    mounts = {v.split(":")[1]: v.split(":")[0] for v in services["grafana"]["volumes"]}
    provisioning = REPO / mounts["/etc/grafana/provisioning"]
    providers = yaml.safe_load((provisioning / "dashboards" / "cnn-tagger.yml").read_text())
    dashboards_path = providers["providers"][0]["options"]["path"]
    dashboards = REPO / mounts[dashboards_path]
    assert json.loads((dashboards / "cnn-tagger.json").read_text())["uid"] == "cnn-tagger"
    sources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    assert sources["datasources"][0]["url"] == "http://prometheus:9090"


def test_compose_gpu_override_reserves_a_gpu_for_the_gpu_image() -> None:
    services = yaml.safe_load(COMPOSE_GPU.read_text())["services"]
    assert services["trainer"]["image"] != services["api"]["image"]
    for name in ("trainer", "api"):
        assert services[name]["build"]["args"]["VARIANT"] == "gpu"
        assert services[name]["image"].endswith(":gpu}")
        (device,) = services[name]["deploy"]["resources"]["reservations"]["devices"]
        assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]


def test_dockerfile_serves_the_app_as_a_non_root_user() -> None:
    pairs = _dockerfile_instructions()
    assert pairs[0] == ("ARG", "PYTHON_IMAGE=python:3.11-slim")
    stages = _dockerfile_stages()
    assert list(stages)[-1] == "api", "the API image is the default target"
    api = stages["api"]
    args = dict(api)
    assert args["FROM"] == "runtime AS api"
    assert ("ARG", "VARIANT=cpu") in api
    assert ("COPY", "--from=serve-builder /opt/venv /opt/venv") in api
    assert args["EXPOSE"] == str(APP_PORT)
    assert (
        f"127.0.0.1:%s/healthz' % os.environ.get('TAGGER_PORT', '{APP_PORT}')"
        in (args["HEALTHCHECK"])
    )
    assert json.loads(args["CMD"]) == ["python", "-m", "app"]
    assert "TAGGER_PORT=8000" in args["ENV"]
    runtime = dict(stages["runtime"])
    assert json.loads(runtime["VOLUME"]) == ["/models"]
    assert "TAGGER_MODEL_STORE=/models" in runtime["ENV"]
    for name in ("api", "trainer"):
        assert dict(stages[name])["USER"] not in ("root", "0")


def test_dockerfile_api_image_is_the_serve_install_and_the_trainer_has_tensorflow() -> None:
    stages = _dockerfile_stages()
    (serve_deps,) = [a for i, a in stages["serve-deps"] if i == "RUN" and "requirements.py" in a]
    assert 'cpu) extras=""' in serve_deps and 'gpu) extras="gpu"' in serve_deps
    (train_deps,) = [a for i, a in stages["train-deps"] if i == "RUN"]
    assert "requirements.py train <" in train_deps
    assert dict(stages["train-deps"])["FROM"] == "serve-deps AS train-deps"
    builder = " ".join(a for i, a in stages["serve-builder"] if i in ("COPY", "RUN"))
    assert "find_spec('tensorflow') is not None" in builder, "the CPU API build checks it"
    assert "COPY training" not in builder
    trainer = stages["trainer"]
    assert ("COPY", "--from=train-builder /opt/venv /opt/venv") in trainer
    ignored = (REPO / ".dockerignore").read_text().splitlines()
    assert (
        "deploy" in ignored
        and "!deploy/docker/requirements.py" in ignored[ignored.index("deploy") :]
    )
    assert json.loads(dict(trainer)["CMD"])[:4] == ["python", "-m", "training", "train"]

    serve, train, gpu = _requirement_names(), _requirement_names("train"), _requirement_names("gpu")
    assert {"fastapi", "onnxruntime", "numpy"} <= serve
    assert not serve & TRAINING_ONLY, "the CPU API image would carry training packages"
    assert train >= serve | TRAINING_ONLY
    assert "tensorflow" in gpu, "TensorFlow stays the GPU path, in the GPU API image too"


def _compose_trainer_script(profile: str = "quick") -> str:
    """The trainer's shell command after compose's interpolation (`$$` -> `$`, defaults)."""
    script = yaml.safe_load(COMPOSE.read_text())["services"]["trainer"]["command"][-1]
    script = script.replace("${TAGGER_TRAIN_PROFILE:-quick}", profile)
    return script.replace("$${", "${")


def test_compose_trainer_trains_only_when_the_store_is_empty(trained_store, tmp_path: Path) -> None:
    # The training command is swapped for an echo: this checks the one-shot logic, not training.
    script = _compose_trainer_script().replace("python -m training", "echo TRAIN")
    env = {"PATH": os.environ["PATH"], "TAGGER_MODEL_NAME": trained_store.name}

    def run(store: Path) -> subprocess.CompletedProcess[str]:
        command = script.replace("python -m", f"{sys.executable} -m")
        full_env = {**env, "TAGGER_MODEL_STORE": str(store)}
        return subprocess.run(["sh", "-c", command], env=full_env, capture_output=True, text=True)

    existing = run(trained_store.root)
    assert existing.returncode == 0 and "TRAIN" not in existing.stdout
    empty = run(tmp_path / "empty-store")
    assert empty.returncode == 0
    assert f"TRAIN train --profile quick --store {tmp_path / 'empty-store'}" in empty.stdout

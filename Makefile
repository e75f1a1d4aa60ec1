# The two commands README.md opens with: `make run` and `make test`. Both do the set-up first.
.PHONY: setup run test lint bench

setup:
	@bash scripts/setup.sh

run: setup
	.venv/bin/engram

test: setup
	bash scripts/test.sh

# The two commands README.md opens with: `make run` and `make test`. Both do the set-up first.
.PHONY: setup run test lint bench

setup:
	@bash scripts/setup.sh

run: setup
	.venv/bin/engram

test: setup
	bash scripts/test.sh

# The self-contained Linux bundle (issue 16): dist/engram/, a tarball and a .deb.
.PHONY: bundle bundle-test
bundle: setup
	bash scripts/bundle.sh

# Unpacks the .deb into a scratch root and starts the bundled app under Xvfb (tests/test_bundle.py).
bundle-test: bundle
	ENGRAM_BUNDLE_DEB=$$(ls -t dist/engram_*_amd64.deb | head -1) \
		.venv/bin/python -m pytest -q -p no:cacheprovider tests/test_bundle.py

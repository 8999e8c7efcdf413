# Two commands do all the set-up on a fresh machine:
#   make demo   - install what is missing, build, run examples/quickstart.exs
#   make test   - install what is missing, build, run the suite on every Python lane
.PHONY: setup demo test bench precompile format lint

setup:
	@bash scripts/setup.sh

demo: setup
	@bash scripts/with_env.sh env PY_PYTHON=$(CURDIR)/.venv/bin/python mix run examples/quickstart.exs

test: setup
	@bash scripts/test.sh $(ARGS)

bench: setup
	@bash scripts/bench.sh

precompile: setup
	@bash scripts/precompile.sh

format:
	mix format
	cargo fmt --manifest-path native/py_nif/Cargo.toml

lint:
	mix format --check-formatted
	cargo fmt --manifest-path native/py_nif/Cargo.toml -- --check
	PYO3_PYTHON=python3 cargo clippy --manifest-path native/py_nif/Cargo.toml --release -- -D warnings

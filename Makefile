# tianwang: the two commands are `make demo` and `make test`; both run setup first.
# Builds share one target folder across checkouts (2 cores: never build the dependencies twice).
CARGO_TARGET_DIR ?= $(HOME)/.cache/tianwang/target
export CARGO_TARGET_DIR

.PHONY: setup demo test fuzz bench check-config

setup:
	@bash scripts/setup.sh

demo: setup
	cargo run --release --locked -- demo

test: setup
	@bash scripts/test.sh

# The longer property runs: schemathesis with many more examples per operation and role.
fuzz: setup
	TIANWANG_FUZZ_CASES=$${TIANWANG_FUZZ_CASES:-20000} cargo test --locked --test fuzz
	TIANWANG_SCHEMATHESIS_EXAMPLES=$${TIANWANG_SCHEMATHESIS_EXAMPLES:-500} cargo test --locked --test schemathesis -- --nocapture

bench: setup
	cargo bench --locked

check-config:
	cargo run --locked -q -- check-config camera-configs/demo

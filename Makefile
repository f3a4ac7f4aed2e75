# doce: `make run` starts the whole stack, `make test` runs the test suite against it.
# Both install what is missing first (see scripts/tools.sh).
.PHONY: run test bench build tools clean

run:
	@bash scripts/run.sh

test:
	@bash scripts/test.sh

bench:
	@bash scripts/test.sh bench

build:
	CGO_ENABLED=0 go build -trimpath -o bin/doce ./cmd/doce

tools:
	@bash scripts/tools.sh

clean:
	rm -rf bin

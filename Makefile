# doce: `make run` starts the whole stack, `make test` runs the test suite against it.
# Both install what is missing first (see scripts/tools.sh); `make check` runs the unit tests
# alone, with no service.
.PHONY: run test check bench build tools clean

run:
	@bash scripts/run.sh

test:
	@bash scripts/test.sh

# Every unit test, no service started: tests that need the real stack skip themselves.
check:
	go vet ./...
	env -u DOCE_TEST_STACK go test -count=1 ./...

bench:
	@bash scripts/test.sh bench

build:
	CGO_ENABLED=0 go build -trimpath -o bin/doce ./cmd/doce

tools:
	@bash scripts/tools.sh

clean:
	rm -rf bin
